"""Calculators that show their work: parameters, FLOPs, memory, KV cache, roofline, scaling laws, plans."""
