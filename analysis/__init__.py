"""Analysis of airtune logs: loaders, metrics, figures, reports.

    from analysis import load_sweep, throughput, mean_ci
    logs = load_sweep("results/olla_vs_cqi_tune")
    per_seed = throughput(logs.slots, duration_s=logs.duration_s)          # one row per point and UE
    mean_ci(per_seed, "throughput_mbps")                                   # across seeds, 95 % CI

Imports nothing from the engine but ``simulator.log_schema``.
"""
from analysis.load import LoadError, Logs, load, load_run, load_sweep
from analysis.metrics import (ber_gap_to_genie, bler, bler_prediction_error, cell, csi_rd, mean_ci, throughput,
                              update_stats)

__all__ = ["LoadError", "Logs", "load", "load_run", "load_sweep", "throughput", "bler", "bler_prediction_error",
           "csi_rd", "ber_gap_to_genie", "update_stats", "mean_ci", "cell"]
