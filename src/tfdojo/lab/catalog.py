"""Every lab experiment, in the order the gallery shows them, and the lookups the CLI and the trainer use."""

from __future__ import annotations

from tfdojo.errors import ConfigError
from tfdojo.lab.experiment import Experiment

EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        name="sqrt-d-scaling",
        module="sqrt_d",
        claim="Dividing QKᵀ by √d keeps score variance ~1, softmax entropy flat and gradients alive as d grows; "
        "without it variance grows like d, the softmax saturates and its gradient vanishes.",
        method="q, k ~ N(0, I) in fp64 for d = 16…1024 against 512 keys; score variance, mean softmax entropy and "
        "the median per-query ‖dL/dscores‖ for a random upstream gradient, with scale 1/√d and with scale 1.",
        questions=("attention-formula-walkthrough", "softmax-numerical-stability", "qk-norm-attention-logit-growth"),
    ),
    Experiment(
        name="kv-cache-heads",
        module="kv_cache_heads",
        claim="A KV cache holds exactly 2·L·Hkv·D·S·B values (what `tfdojo calc kv` says), so GQA and MQA shrink "
        "it by Hq/Hkv.",
        method="A 4-layer, 16-query-head Llama with 16, 4, 2 and 1 KV heads: prefill a StaticKVCache to 4,096 "
        "tokens, count its storage bytes, compare with calc.kv_cache_bytes; decode speed is reported, not asserted "
        "(the CPU is shared).",
        questions=(
            "kv-cache-purpose",
            "kv-cache-llama2-7b-4k",
            "kv-cache-llama3-8b-batch",
            "gqa-head-grouping",
            "gqa-decode-memory-traffic",
            "gqa-repeat-kv",
        ),
    ),
    Experiment(
        name="logit-lens",
        module="logit_lens",
        claim="Decoding SmolLM2's residual stream after each block (final norm + unembedding) agrees with the final "
        "prediction more and more with depth: under 20% in the first half, most of it in the last blocks.",
        method="512 tokens of held-out text (the bank's explanations); per block, top-1 agreement with the final "
        "argmax and KL(final ‖ lens).",
        questions=("final-norm-before-head", "why-residual-connections", "decoder-block-anatomy"),
        weights="smollm2-135m-instruct",
    ),
    Experiment(
        name="residual-stream",
        module="residual_stream",
        claim="In a pre-LN model the residual stream's norm grows with depth (SmolLM2: >5x from block 1 to 30) and "
        "the final norm brings every token back to a common scale before the head; the first token carries a "
        "massive norm.",
        method="Forward hooks on every block over 512 held-out tokens: mean token norm per block (first token "
        "apart), first-token norm, max/min token norm before and after the final RMSNorm.",
        questions=("pre-ln-versus-post-ln", "final-norm-before-head", "why-residual-connections", "rmsnorm"),
        weights="smollm2-135m-instruct",
    ),
    Experiment(
        name="attention-sinks",
        module="attention_sinks",
        claim="Most SmolLM2 layers put far more attention on the first token than a uniform share; evicting it "
        "(window-only cache) blows up perplexity over 4x the window, while 4 sinks + the window stay near full "
        "attention.",
        method="Attention maps recomputed from each layer's input; perplexity of 512 held-out tokens fed 16 at a "
        "time through tfdojo.infer.sink_cache.SinkKVCache with sinks=0 (window 132) and sinks=4 (window 128), "
        "against one full forward.",
        questions=("attention-sinks-streaming", "sliding-window-kv-cache-mistral", "design-long-context-serving"),
        weights="smollm2-135m-instruct",
    ),
    Experiment(
        name="embeddings",
        module="embeddings",
        claim="Cosine similarity of MiniLM's mean-pooled embeddings separates paraphrases from unrelated pairs, but "
        "scores a negation (> 0.8) and a swap of who did what to whom (> 0.9) like a paraphrase.",
        method="24 hand-written sentence pairs in four kinds (paraphrase, unrelated, negation, order swap), embedded "
        "with tfdojo.load('all-minilm-l6-v2').embed; cosine per pair, mean per kind.",
        questions=("sentence-embeddings-from-encoders", "design-rag-retrieval-service"),
        weights="all-minilm-l6-v2",
    ),
    Experiment(
        name="moe-routing",
        module="moe_routing",
        claim="A top-1 router trained without the load-balancing loss sends most tokens to one expert; with the loss "
        "(Switch, α = 0.05) the busiest expert stays under 1.5x its fair share and, at capacity factor 1.25, "
        "drops less than half as many tokens.",
        method="tfdojo.nn.moe.MoE (8 experts, top-1) fitted to a random teacher MLP on inputs with a shared offset, "
        "400 Adam steps with α = 0 and α = 0.05; expert load and dropped share on 4,096 held-out tokens at capacity "
        "factors 0.5…4.",
        questions=("moe-load-balancing-loss", "moe-capacity-factor-token-dropping", "moe-top2-router"),
    ),
    Experiment(
        name="sampling",
        module="sampling",
        claim="On SmolLM2's next-token distributions over held-out text, entropy (diversity) rises with "
        "temperature, with top-p and as min-p falls; the true next token is best predicted near T = 1; top-p 0.5 "
        "drops over 10% of the true tokens.",
        method="One forward over 512 held-out tokens; each knob applied to the same logits (top-p through "
        "tfdojo.infer.sampling.top_p_filter, min-p as p ≥ min_p·p_max): entropy, share of true tokens kept, "
        "perplexity over the kept ones.",
        questions=("sampling-temperature-top-k-top-p", "top-k-top-p-sampling", "greedy-decode-loop"),
        weights="smollm2-135m-instruct",
    ),
    Experiment(
        name="induction-heads",
        module="induction_heads",
        claim="On a repeated random token sequence SmolLM2's loss on the second copy falls far below the first; "
        "some heads attend almost only to the token after the previous occurrence, and ablating the top 10 of them "
        "raises the second-copy loss over 3x as much as ablating 10 other heads.",
        method="8 sequences of 64 random tokens, each repeated; induction score = attention from position i of copy "
        "2 to i − 64 + 1, from maps recomputed per layer; heads zeroed before o_proj by a pre-hook.",
        questions=("induction-heads-in-context-learning", "head-pruning-findings", "why-multi-head-attention"),
        weights="smollm2-135m-instruct",
    ),
    Experiment(
        name="attention-cost",
        module="attention_cost",
        claim="Eager attention's FLOPs and largest intermediate grow like T²; a tiled (FlashAttention-style) kernel "
        "keeps ~T² FLOPs but O(T) memory, CPU SDPA never holds a T×T matrix, and a sliding window or linear "
        "attention grow like T in both.",
        method="Causal forward, 9 heads × 64 (SmolLM2's), T = 512…4,096, through tfdojo.nn.attention backends: "
        "torch.utils.flop_counter FLOPs, the largest tensor any operator returns (a TorchDispatchMode), best-of-3 "
        "time; growth exponent p of value ∝ T^p. Time is shown, not asserted (bench/attention.py measures RSS).",
        questions=(
            "attention-quadratic-cost-where",
            "flashattention-io-argument",
            "attention-activation-memory-without-flash",
            "linear-attention-kernel-trick",
            "sliding-window-attention-reach",
        ),
    ),
    Experiment(
        name="pre-post-ln",
        module="pre_post_ln",
        claim="At init (the paper's Xavier init, no residual scaling) post-LN sends its last layer over 1.5x the "
        "gradient pre-LN does, a gap that widens with depth (pre-LN's shrinks like 1/√L, Xiong et al. 2020); at a "
        "high learning rate post-LN without warm-up stalls > 0.3 nats behind, warm-up rescues it, and pre-LN needs "
        "none.",
        method="Byte-level LayerNorm Transformers (d = 64) on Shakespeare: ‖∂L/∂W₂‖ of every block's FFN output "
        "matrix at init for 6 and 12 layers; then 6 layers trained 300 Adam steps at lr 3e-3 (β₂ = 0.98) with no "
        "warm-up and with 100 linear warm-up steps, pre-LN and post-LN; validation loss on a held-out play.",
        questions=("pre-ln-versus-post-ln", "learning-rate-warmup-purpose", "warmup-cosine-schedule"),
    ),
    Experiment(
        name="quantization",
        module="quantization",
        claim="On SmolLM2 (a Q4_1 GGUF) bf16, int8 and int4 weights all stay within 2% of fp32 perplexity on "
        "held-out Shakespeare; an int8 KV cache is ≈ free (< 1%) while a per-token int4 KV cache costs over 2%.",
        method="512 tokens of The Winter's Tale (a held-out play of tfdojo.train.corpus) fed 16 at a time "
        "(the decoder's integer-kernel row count) through tfdojo.load(..., dtype=bfloat16 | quant='int8' | "
        "'int4') and through int8 / int4 tfdojo.infer.quant_cache.QuantizedKVCache; greedy decode tokens/s "
        "reported, not asserted (shared CPU).",
        questions=(
            "weight-only-quantization-decode",
            "int8-quantize",
            "serving-memory-70b-int4",
            "bf16-vs-fp16-formats",
        ),
        weights="smollm2-135m-instruct",
    ),
    Experiment(
        name="linear-vs-softmax",
        module="linear_vs_softmax",
        claim="On associative recall, a one-layer model with softmax attention recalls every value as the number of "
        "key-value pairs grows; with linear attention, whose causal form keeps the past in a fixed-size state, "
        "recall falls as the pairs grow and the gap to softmax widens.",
        method="Sequences of n (key, value) pair tokens with distinct keys (16 keys, 8 values) followed by every key "
        "as a query; one-layer models (d = 64, 4 heads, no positions) with sdpa or linear (elu + 1) attention, "
        "trained 600 steps × 64 sequences on n = 2…16 together; top-1 recall on 512 fresh sequences per n.",
        questions=("linear-attention-kernel-trick", "linear-attention"),
    ),
    Experiment(
        name="length-extrapolation",
        module="length_extrapolation",
        claim="Trained on one length, ALiBi keeps its loss at 2x and 4x that length and is the best there; RoPE and "
        "sinusoidal positions degrade past the training length (> 0.2 nats at 4x); NoPE degrades less than either.",
        method="Tiny character models (2 layers, d = 64, 4 heads) on 32-character Shakespeare windows, 600 steps, one "
        "per position scheme (sinusoidal, learned, RoPE, ALiBi, none); held-out loss over windows of 32, 64 and 128 "
        "characters. Learned and sinusoidal tables reach 4x; the learned rows past 1x never train.",
        questions=(
            "alibi-linear-bias",
            "rope-context-extension",
            "learned-absolute-positions-limits",
            "nope-no-positional-encoding",
            "sinusoidal-encoding-design",
        ),
    ),
    Experiment(
        name="isoflop",
        module="isoflop",
        claim="At toy scale an IsoFLOP sweep has Chinchilla's shape: at each fixed compute budget the held-out loss "
        "has an interior minimum over model size, and the compute-optimal size grows with the budget (the tokens "
        "per parameter it finds are reported beside the ~20 of Hoffmann et al., 2022, not asserted).",
        method="Two-layer character models on 64-character Shakespeare windows, 16 per step, each trained for the "
        "tokens a budget of 1e10, 3e10 or 1e11 FLOPs buys (FLOPs per token from tfdojo.calc.flops_per_token, "
        "attention included) with a cosine schedule ending at its last step; five widths per budget (4…16, 6…24, "
        "8…32: ~0.9k–36k parameters), a parabola of held-out loss against log10 N per budget gives N_opt, and a "
        "line through the three gives its growth with C.",
        questions=(
            "kaplan-vs-chinchilla-scaling-laws",
            "chinchilla-optimal-size-for-1e24-flops",
            "chinchilla-tokens-7b-and-overtraining",
            "cluster-budget-compute-optimal-model",
            "training-compute-6nd",
        ),
    ),
)


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; ConfigError listing the names when there is none."""
    for e in EXPERIMENTS:
        if e.name == name:
            return e
    names = ", ".join(e.name for e in EXPERIMENTS)
    raise ConfigError(f"no lab experiment called {name!r}; try one of: {names} (or `tfdojo lab list`)")


def experiments_for(question_id: str) -> list[Experiment]:
    """The experiments that answer bank question ``question_id`` (empty when none does)."""
    return [e for e in EXPERIMENTS if question_id in e.questions]
