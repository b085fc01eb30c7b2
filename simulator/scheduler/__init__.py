"""Per-slot scheduling of the carrier's PRB groups to UEs: proportional fair (single-user, or
greedy multi-user sets) and round robin, HARQ retransmissions first; traffic is full buffer.
"""
