"""Studies: ``airtune experiment NAME`` (a paper's study as a set of sweeps, ``experiment.py``) and
the offline studies that need the simulator's NR chain or channels (``python -m simulator.studies.<name>``)."""
