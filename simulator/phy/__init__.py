"""PHY backends behind one interface (``simulator.phy.base.PhyBackend``)."""
