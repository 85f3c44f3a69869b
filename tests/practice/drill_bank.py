"""A small question bank for the store, session and CLI tests: four questions, two of them on the grill."""

from pathlib import Path

from tfdojo.practice.loader import Bank, load_bank_from

COMMON = """
short_answer = "A short answer of at least ten characters."
explanation = "An explanation that is long enough to pass the schema's forty-character minimum."
mistakes = ["A common mistake."]
sources = [{ title = "Attention Is All You Need", url = "https://arxiv.org/abs/1706.03762" }]
links = [{ kind = "doc", target = "docs/calc.md" }]
[question.rubric]
key_points = [{ text = "first point" }, { text = "second point" }, { text = "third point" }]
"""

QUESTIONS = {
    "why-scale-scores": ('section = "attention-maths"', 'type = "conceptual"', 'difficulty = "easy"', "grill = true"),
    "kv-cache-70b": ('section = "inference-serving"', 'type = "numeric"', 'difficulty = "medium"', "grill = true"),
    "write-softmax": ('section = "attention-maths"', 'type = "coding"', 'difficulty = "medium"', "grill = false"),
    "design-serving": ('section = "system-design"', 'type = "system-design"', 'difficulty = "hard"', "grill = false"),
}
NUMERIC = """
[question.numeric]
call = "kv_cache_bytes"
args = { model = "llama-2-70b", seq_len = 8192 }
tolerance = 0.05
"""


def write_bank(folder: Path) -> Bank:
    """Write the four questions as one TOML file in ``folder`` and load them."""
    folder.mkdir(parents=True, exist_ok=True)
    blocks = []
    for qid, fields in QUESTIONS.items():
        head = "\n".join(fields)
        block = f'[[question]]\nid = "{qid}"\n{head}\nminutes = 2\nprompt = "Question {qid}: explain it please."'
        blocks.append(block + COMMON + (NUMERIC if qid == "kv-cache-70b" else ""))
    (folder / "drill.toml").write_text("\n".join(blocks), encoding="utf-8")
    return load_bank_from(folder)
