"""Timings of one generate() call: time to first token, prefill and decode throughput."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GenerationMetrics:
    """Prefill = one forward over the prompt; decode = one forward per further token (all rows of a batch)."""

    prefill_tokens: int
    prefill_s: float
    ttft_s: float
    decode_tokens: int
    decode_s: float
    total_s: float

    @property
    def prefill_tok_s(self) -> float:
        """Prompt tokens processed per second of prefill."""
        return self.prefill_tokens / self.prefill_s if self.prefill_s > 0 else 0.0

    @property
    def decode_tok_s(self) -> float:
        """Tokens produced per second of decoding, after the first one."""
        return self.decode_tokens / self.decode_s if self.decode_s > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """Every field and rate, for JSON output or a table."""
        return {**asdict(self), "prefill_tok_s": self.prefill_tok_s, "decode_tok_s": self.decode_tok_s}
