"""CSI report kinds: what the UE reports and the gNB reconstructs."""
