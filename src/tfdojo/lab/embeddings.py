"""What cosine similarity of mean-pooled sentence embeddings (Reimers & Gurevych, 2019) separates, and where it
fails: MiniLM puts paraphrases far above unrelated pairs, but a negation or a swap of who-did-what barely moves
the vector."""

from __future__ import annotations

from pathlib import Path

import torch

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding

PAIRS: dict[str, list[tuple[str, str]]] = {
    "paraphrase": [
        (
            "The cache stores keys and values from earlier tokens.",
            "Keys and values of past tokens are kept in the cache.",
        ),
        (
            "Attention cost grows quadratically with sequence length.",
            "Doubling the context quadruples the attention work.",
        ),
        ("The model was trained on a large amount of text.", "A big text corpus was used to train the model."),
        ("She bought a new car yesterday.", "Yesterday she purchased a new automobile."),
        ("The meeting was moved to Friday.", "They rescheduled the meeting for Friday."),
        ("Gradient clipping prevents exploding updates.", "Capping the gradient norm stops updates from blowing up."),
    ],
    "unrelated": [
        ("The cache stores keys and values from earlier tokens.", "She bought a new car yesterday."),
        ("Attention cost grows quadratically with sequence length.", "The meeting was moved to Friday."),
        ("The model was trained on a large amount of text.", "The soup needs more salt."),
        ("She bought a new car yesterday.", "Gradient clipping prevents exploding updates."),
        ("The meeting was moved to Friday.", "Penguins live in the southern hemisphere."),
        ("Gradient clipping prevents exploding updates.", "My grandmother grows tomatoes."),
    ],
    "negation": [
        ("The drug is safe for children.", "The drug is not safe for children."),
        ("The test passed on the first try.", "The test did not pass on the first try."),
        ("This restaurant is open on Sundays.", "This restaurant is never open on Sundays."),
        ("The model supports long inputs.", "The model does not support long inputs."),
        ("I agree with the decision.", "I do not agree with the decision."),
        ("The bridge is strong enough for trucks.", "The bridge is not strong enough for trucks."),
    ],
    "order swap": [
        ("The dog bit the man.", "The man bit the dog."),
        ("Alice paid Bob for the lunch.", "Bob paid Alice for the lunch."),
        ("The teacher praised the student.", "The student praised the teacher."),
        ("Germany beat Brazil in the final.", "Brazil beat Germany in the final."),
        ("The encoder feeds the decoder.", "The decoder feeds the encoder."),
        ("The cat chased the mouse.", "The mouse chased the cat."),
    ],
}


@torch.no_grad()
def run(out: Path, *, quick: bool = False) -> Finding:
    """Cosine of every pair, by kind (``quick`` uses the first three pairs of each kind)."""
    import tfdojo

    encoder = tfdojo.load("all-minilm-l6-v2")
    kinds = {k: v[:3] if quick else v for k, v in PAIRS.items()}
    cosines: dict[str, list[float]] = {}
    for kind, pairs in kinds.items():
        left = encoder.embed([a for a, _ in pairs])  # (N, 384), L2-normalised
        right = encoder.embed([b for _, b in pairs])
        cosines[kind] = (left * right).sum(-1).tolist()
    mean = {k: sum(v) / len(v) for k, v in cosines.items()}
    checks = {
        "paraphrases beat unrelated by > 0.4": min(cosines["paraphrase"]) - max(cosines["unrelated"]) > 0.0
        and mean["paraphrase"] - mean["unrelated"] > 0.4,
        "negations look like paraphrases (mean cosine > 0.8)": mean["negation"] > 0.8,
        "order swaps look like paraphrases (mean cosine > 0.9)": mean["order swap"] > 0.9,
    }
    with figure(out, "embeddings", width=5.0) as (a,):
        for i, (kind, values) in enumerate(cosines.items()):
            a.scatter([i] * len(values), values, alpha=0.7)
            a.hlines(mean[kind], i - 0.3, i + 0.3, color="black")
        a.set_xticks(range(len(cosines)), list(cosines))
        a.set_ylabel("cosine similarity (MiniLM, mean pooling)")
    numbers = {
        "cosine": cosines,
        "mean": mean,
        "pairs": {k: [list(p) for p in v] for k, v in kinds.items()},
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "embeddings.png")])
