"""How much memory a run's fading channels take, and the check that refuses a run this machine cannot hold.

``simulator.channel.fading`` generates a TDL, CDL, UMi or UMa channel a chunk of ~64 MB of Sionna's
generation tensors at a time and keeps each UE's last few chunks, so a run's channel memory does not
grow with ``duration_s``: what does is each UE's per-slot arrays (sample index and SNR). While a
chunk is generated Sionna holds a few tensors per sample and antenna pair (the peak), which sizes
the chunks. Those peaks were measured on whole-run draws, before the chunks: on the quickstart (TDL-B,
one antenna pair, 52 PRB, ``/usr/bin/time -v airtune run scenarios/quickstart.yaml --set duration_s=D``): peak RSS 1.28 GB at
D = 20 s and 2.09 GB at 60 s, i.e. 20.4 MB per simulated second, 10.2 kB per slot and pair; CDL and
the 38.901 system-level models measured 8.3 kB (4x8 array, one UE antenna, UMi, 20,000 slots:
5.3 GB). A UE that does not move has one sample. Ray-traced channels keep only their anchors and are
not counted. The estimate is meant to catch runs that cannot fit (a 10-hour run dies with an OOM
after 20 s otherwise), not to predict RSS to the megabyte.
"""
from __future__ import annotations

import os

from models.config import FieldError
from simulator.mobility import Mobility
from simulator.schema import Scenario

BASE_BYTES = 0.9e9                       # TensorFlow, Sionna and the rest of a run (the quickstart's intercept)
GENERATION_BYTES_PER_SAMPLE_PAIR = {"tdl": 10.2e3, "cdl": 8.3e3, "umi": 8.3e3, "uma": 8.3e3, "ray_traced": 0.0}
KEPT_PATHS = 24                          # the most paths a 38.901 TDL/CDL/UMi/UMa channel keeps
MACHINE_SHARE = 0.9                      # of the physical memory a run may plan to use
SLOT_BYTES_PER_UE = 16.0                 # each UE's per-slot arrays kept for the run: sample index and SNR


def machine_bytes() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def channel_bytes(scenario: Scenario) -> tuple[float, list[float], list[float]]:
    """(the run's estimated peak bytes, each UE's generation peak, each UE's kept path gains)."""
    model = scenario.channel.model
    pairs = scenario.phy.num_ue_antennas * scenario.gnb.num_antennas
    from simulator.channel.fading import CACHED_CHUNKS, chunk_samples   # fading imports this module

    gen, kept = [], []
    for ue in scenario.ues:
        samples = scenario.num_slots if Mobility(ue.mobility).speed_mps > 0 else 1
        if model == "ray_traced":            # keeps only its anchors: not counted
            gen.append(0.0)
            kept.append(0.0)
            continue
        chunk = min(samples, chunk_samples(model, pairs))     # generated a chunk at a time, the last few kept
        gen.append(chunk * pairs * GENERATION_BYTES_PER_SAMPLE_PAIR[model])
        kept.append(CACHED_CHUNKS * chunk * pairs * KEPT_PATHS * 8.0)
    slot_arrays = SLOT_BYTES_PER_UE * scenario.num_slots * len(scenario.ues)
    return BASE_BYTES + slot_arrays + sum(kept) + max(gen, default=0.0), gen, kept


def check_memory(scenario: Scenario, available_bytes: float | None = None) -> None:
    """Raise FieldError on ``duration_s`` when one UE alone (its channel chunks and per-slot arrays)
    would not fit in ``MACHINE_SHARE`` of ``available_bytes`` (default: this machine's memory), on
    ``ues`` when only all of them together would not."""
    limit = MACHINE_SHARE * (machine_bytes() if available_bytes is None else available_bytes)
    total, gen, kept = channel_bytes(scenario)
    if total <= limit:
        return
    gb = 1e9
    per_ue_slots = SLOT_BYTES_PER_UE * scenario.num_slots
    worst = max(range(len(gen)), key=lambda i: gen[i] + kept[i])
    alone = BASE_BYTES + gen[worst] + kept[worst] + per_ue_slots
    what = (f"the run needs about {total / gb:.1f} GB at its peak (~{gen[worst] / gb:.1f} GB while a chunk of "
            f"UE {scenario.ues[worst].id}'s channel is drawn, {sum(kept) / gb:.1f} GB of channel chunks kept and "
            f"{per_ue_slots * len(gen) / gb:.1f} GB of per-slot arrays for {len(gen)} UE(s)), more than "
            f"{limit / gb:.1f} GB ({MACHINE_SHARE:.0%} of this machine's memory; simulator/memory_estimate.py)")
    if alone > limit:
        raise FieldError("duration_s", f"{what}: shorten the run")
    raise FieldError("ues", f"{what}: fewer UEs, or split them over runs")
