"""Training-data generation that needs the simulator's channels or NR chain (``airtune data``); each
dataset's format (reader, writer, description) is its model package's."""
