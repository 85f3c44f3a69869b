"""Calculators that show their work: parameters, FLOPs, memory, KV cache, roofline, scaling laws, plans."""

from tfdojo.calc.flops import flops_per_token, mfu
from tfdojo.calc.params import param_count
