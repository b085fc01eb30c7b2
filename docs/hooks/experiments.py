"""MkDocs hook: each experiment's results (scenarios/experiments/<name>/RESULTS.md, FINDINGS.md and
their figures) become pages of the site under experiments/<name>/, read from where the study writes
them, so the site never holds a stale copy."""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "scenarios" / "experiments"
PAGES = {"RESULTS.md": "results.md", "FINDINGS.md": "findings.md"}


def on_files(files, config):
    for folder in sorted(p for p in EXPERIMENTS.iterdir() if p.is_dir()):
        for src in sorted(folder.iterdir()):
            if src.name in PAGES:
                uri = f"experiments/{folder.name}/{PAGES[src.name]}"
            elif src.suffix == ".png":
                uri = f"experiments/{folder.name}/{src.name}"
            else:
                continue
            files.append(File.generated(config, uri, abs_src_path=str(src)))
    return files
