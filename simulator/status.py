"""A status line on stderr for the setup of long work (what is being built, before a progress bar
takes over): rewritten in place on a terminal, one line per step into a log file or pipe."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class StatusLine:
    """``status("building channels")`` writes ``airtune: building channels``; ``done()`` clears the
    line on a terminal. Disabled, every call is a no-op."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._shown = False
        self._t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        text = f"airtune: {message} ({time.monotonic() - self._t0:.0f} s)"
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self._shown = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
