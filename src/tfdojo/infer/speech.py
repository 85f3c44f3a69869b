"""Speech to text with our Whisper: features, 30 s windows, greedy decoding with a KV cache, text.

Each window is decoded on its own (no previous-text prompt, no timestamps), as faster-whisper does with
``beam_size=1, temperature=0, without_timestamps=True, condition_on_previous_text=False``:

    prompt  <|startoftranscript|> [<|en|> <|transcribe|>  multilingual models only] <|notimestamps|>
    step    logits of the last token; never pick the suppressed ids (non-speech symbols and the task tokens);
            on the first step not a blank (" ") nor <|endoftext|> either; argmax; stop at <|endoftext|>

The audio keys/values of every decoder layer are projected once per window; the self-attention cache grows by one
token a step, so a step costs the same at token 5 and token 200. The encoder uses every thread torch has; the
decoding steps run on one (each is ~100 small ops, and on 2 shared cores a thread hand-off per op cost 6x:
205 ms a step on two threads against 32 ms on one, load average 11).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor

from tfdojo.errors import TokenizerError
from tfdojo.infer.audio import MAX_AUDIO_SECONDS, load_audio
from tfdojo.infer.cache import StaticKVCache
from tfdojo.loading import one_thread
from tfdojo.models.whisper import Whisper, WhisperConfig
from tfdojo.models.whisper_features import log_mel, mel_filters, windows

MAX_NEW_TOKENS = 224  # per window: half the decoder's 448 positions, as CTranslate2 caps a Whisper generation


@dataclass(frozen=True)
class WhisperTokens:
    """The special token ids the decoding loop needs, looked up by name in the tokenizer."""

    eot: int
    sot: int
    english: int
    transcribe: int
    translate: int
    sot_lm: int
    sot_prev: int
    no_speech: int
    no_timestamps: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> WhisperTokens:
        names = {
            "eot": "<|endoftext|>",
            "sot": "<|startoftranscript|>",
            "english": "<|en|>",
            "transcribe": "<|transcribe|>",
            "translate": "<|translate|>",
            "sot_lm": "<|startoflm|>",
            "sot_prev": "<|startofprev|>",
            "no_speech": "<|nocaptions|>",
            "no_timestamps": "<|notimestamps|>",
        }
        ids = {field: tokenizer.token_to_id(token) for field, token in names.items()}
        if ids["no_speech"] is None:
            ids["no_speech"] = tokenizer.token_to_id("<|nospeech|>")  # the name in newer vocabularies
        missing = [names[f] for f, i in ids.items() if i is None]
        if missing:
            raise TokenizerError(f"the Whisper tokenizer lacks {', '.join(missing)}; is tokenizer.json Whisper's?")
        return cls(**ids)


class Transcriber:
    """``transcribe(path_or_samples) -> str``: what :func:`tfdojo.load` returns for a Whisper model."""

    def __init__(
        self,
        config: WhisperConfig,
        model: Whisper,
        tokenizer: Tokenizer,
        *,
        suppress_ids: Iterable[int],
        suppress_begin_ids: Iterable[int],
        source: str | Path = "",
    ) -> None:
        self.config, self.model, self.tokenizer, self.source = config, model, tokenizer, str(source)
        self.tokens = t = WhisperTokens.from_tokenizer(tokenizer)
        always = {*suppress_ids, t.transcribe, t.translate, t.sot, t.sot_prev, t.sot_lm, t.no_speech}
        self.suppress_ids = sorted(always)
        self.suppress_begin_ids = sorted(set(suppress_begin_ids))
        self.multilingual = config.vocab_size >= 51865  # the English-only vocabularies are one token shorter
        task = [t.english, t.transcribe] if self.multilingual else []
        self.prompt = [t.sot, *task, t.no_timestamps]
        self.filters = mel_filters(config.n_mels)
        dtype = model.decoder.embed.weight.dtype
        self._mask = torch.zeros(config.vocab_size, dtype=dtype)  # added to every step's logits
        self._mask[self.suppress_ids] = float("-inf")
        self._mask_begin = self._mask.clone()  # and this one on the first step
        self._mask_begin[self.suppress_begin_ids] = float("-inf")

    def features(self, samples: Tensor) -> Tensor:
        """Log-mel features (n_mels, N // 160 + 1) of 16 kHz samples (N,)."""
        return log_mel(samples, self.filters)

    @torch.inference_mode()
    def greedy_tokens(self, window: Tensor) -> list[int]:
        """The text tokens (no prompt, no end token) greedy decoding reads from one (n_mels, n_frames) window."""
        c, model = self.config, self.model
        dtype = model.decoder.embed.weight.dtype
        audio = model.encoder(window.to(dtype).unsqueeze(0))  # (1, n_audio_ctx, d)
        kv = model.decoder.cross_kv(audio)
        budget = min(MAX_NEW_TOKENS, c.n_text_ctx - len(self.prompt))
        cache = StaticKVCache(c.n_decoder_layers, 1, c.n_heads, len(self.prompt) + budget, c.head_dim, dtype=dtype)
        step = torch.tensor([self.prompt])  # (1, prompt)
        mask = self._mask_begin
        out: list[int] = []
        with one_thread():  # a step is many tiny ops: a second thread costs more in hand-offs than it saves
            for _ in range(budget):
                logits = model.decoder(step, kv, cache)[0, -1] + mask  # (vocab,)
                token = int(logits.argmax())
                if token == self.tokens.eot:
                    break
                out.append(token)
                step = torch.tensor([[token]])  # (1, 1)
                mask = self._mask
        return out

    def transcribe_tokens(self, audio: object, *, max_seconds: float = MAX_AUDIO_SECONDS) -> list[list[int]]:
        """Greedy tokens per 30 s window of a path or of 16 kHz samples."""
        samples = load_audio(audio, max_seconds=max_seconds)
        return [self.greedy_tokens(w) for w in windows(self.features(samples), self.config.n_frames)]

    def decode(self, tokens: list[int]) -> str:
        """Text of the tokens, leaving out special and timestamp tokens (ids from <|endoftext|> up)."""
        return self.tokenizer.decode([i for i in tokens if i < self.tokens.eot]).strip()

    def transcribe(self, audio: object, *, max_seconds: float = MAX_AUDIO_SECONDS) -> str:
        """The text spoken in ``audio``: a file path (wav, or any format PyAV decodes) or 16 kHz mono samples.

        Raises AudioError for a missing, corrupt, empty, too large or too long recording.
        """
        pieces = (self.decode(tokens) for tokens in self.transcribe_tokens(audio, max_seconds=max_seconds))
        return " ".join(p for p in pieces if p)
