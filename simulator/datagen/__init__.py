"""Training data made with the simulator (``airtune data``): ``bler.py`` runs scenarios for the BLER
predictor, ``deeprx.py`` draws slots through the NR chain and the fading channel, ``csi.py`` draws
Sionna 38.901 channels and ray-traced ones (``raytrace.py``). Each dataset's format (reader,
writer, description) is its model package's."""
