"""Inference: key/value caches, prefill and decode, sampling, generation."""
