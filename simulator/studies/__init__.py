"""Offline studies that need the simulator's NR chain or channels (run with ``python -m simulator.studies.<name>``)."""
