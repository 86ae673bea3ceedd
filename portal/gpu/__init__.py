"""GPU utilisation: samples from the node agents, their rollups, the idle-GPU flag, queries and reclaim."""
