"""Calculators that show their work: parameters, FLOPs, memory, KV cache, roofline, scaling laws, plans."""

from tfdojo.calc.flops import flops_per_token, mfu
from tfdojo.calc.kv_cache import inference_memory, kv_cache_bytes
from tfdojo.calc.memory import train_memory
from tfdojo.calc.params import param_count
from tfdojo.calc.scaling import chinchilla

__all__ = [
    "chinchilla",
    "flops_per_token",
    "inference_memory",
    "kv_cache_bytes",
    "mfu",
    "param_count",
    "train_memory",
]
