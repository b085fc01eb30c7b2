"""LightTune (seeds/003): the forward-forward BLER predictor (model.py, registered as ``ff_bler``), its
network and closed-form layer gradients (ffnet.py), config (config.py), offline training (train.py) and the
digits check of Table II (digits.py)."""
