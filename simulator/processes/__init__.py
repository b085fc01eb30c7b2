"""SimPy processes, one per concern: mobility, csi_rs, pdsch, feedback."""
