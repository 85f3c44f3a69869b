"""Word-level helpers for grading: tokens, a light stemmer, alias matching and a crude test for "states a claim".

No tagger is needed: the claim test looks for auxiliaries and for verbs from a short list of those that answers about
Transformers use, which is enough to tell a sentence from a list of nouns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache


def word_set(words: str) -> frozenset[str]:
    """The space-separated words of a string, as a set (keeps long word lists readable)."""
    return frozenset(words.split())


_TOKEN = re.compile(r"[a-z0-9]+|[^\x00-\x7f\s]", re.IGNORECASE)

STOPWORDS = word_set(
    "a an the of to in on at by for from with into onto over under as is are was were be been being am it its this "
    "that these those there their they them he she we you i your our and or but so if then than not no nor yet "
    "which who whom what when where while how why do does did has have had can could will would shall should may "
    "might must each every any all some more most less much many very also just only about per via"
)
_AUXILIARIES = word_set(
    "is are was were be been being am isn aren wasn weren has have had hasn haven hadn do does did doesn don didn "
    "can could will would shall should may might must cannot won wouldn shouldn couldn mustn makes made"
)
# Verbs that answers about Transformers use. Those that are also common nouns here (scale, cache, mask, …) count only
# when inflected ("scales", "scaled"), since in a keyword list they appear bare.
_VERBS = word_set(
    "add allow apply approximate assign attend avoid become blow break bring compute concatenate contain control "
    "converge cost cover create cut decay decrease depend diverge divide dominate double drop enable encode ensure "
    "explode fall fit flatten force give go grow halve happen help hold hurt ignore improve increase keep lack lead "
    "learn let lose lower make matter mean move multiply need normalise normalize overflow pass prevent produce push "
    "put reach read reduce remain remove repeat replace require reuse rise run save saturate see send set shift "
    "shrink skip slow solve split spread stabilise stabilize stay stop store subtract sum take tell tend turn "
    "underflow use vanish vary waste work write yield"
)
_NOUN_VERBS = word_set(
    "scale cache mask batch shard train sample step update rank route pad pack norm decode load weight project "
    "quantize quantise"
)
_PRONOUNS = word_set("it they we you this that which these those")


def tokens(text: str) -> list[str]:
    """Lower-cased words and non-ASCII symbols (√, ·, ²) of a text; ASCII punctuation is dropped."""
    return [t.lower() for t in _TOKEN.findall(text)]


@cache
def stem(word: str) -> str:
    """A light suffix stripper so "saturates", "saturated", "saturating" and "saturate" meet (and -ise/-ize)."""
    w = word.lower().replace("iz", "is")
    if len(w) <= 3:
        return w
    for suffix, keep in (("ies", "y"), ("ied", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith(("ss", "us", "is"))):
            w = w[: -len(suffix)] + keep
            break
    if len(w) > 4 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # stopp -> stop
    return w[:-1] if len(w) > 4 and w.endswith("e") else w


def stems(text: str) -> list[str]:
    """The stems of a text's tokens, in order."""
    return [stem(t) for t in tokens(text)]


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, ignoring case, punctuation and simple inflections."""
    needle, hay = stems(phrase), stems(text)
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def _third_person(base: str) -> str:
    """grow -> grows, push -> pushes, vary -> varies."""
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "es" if base.endswith(("sh", "ch", "ss", "x")) else base + "s"


def _past(base: str) -> str:
    """grow -> growed (harmless), scale -> scaled, vary -> varied."""
    if base.endswith("e"):
        return base + "d"
    return base[:-1] + "ied" if base.endswith("y") and base[-2] not in "aeiou" else base + "ed"


_IRREGULAR_PAST = word_set("grew grown became kept lost led fell took gave went left got ran")
_VERB_FORMS = frozenset(_past(b) for b in _VERBS | _NOUN_VERBS) | {_third_person(b) for b in _VERBS} | _IRREGULAR_PAST
_NOUN_VERB_THIRD_PERSON = frozenset(_third_person(b) for b in _NOUN_VERBS)


def _is_plural_noun(word: str) -> bool:
    """A crude test for a plural subject ("logits", "heads") before a bare verb: "the logits grow"."""
    return len(word) > 3 and word.endswith("s") and not word.endswith("ss") and word not in STOPWORDS


def claim_verbs(text: str) -> list[str]:
    """The words of a text that look like finite verbs: auxiliaries, inflected known verbs, known verbs after a subject.

    "scales" counts only after a pronoun ("it scales"), since "scales", "masks" and "weights" are also plurals.
    """
    words = tokens(text)
    found = []
    for i, w in enumerate(words):
        before = words[i - 1] if i > 0 else ""
        after_subject = before in _PRONOUNS or before in _AUXILIARIES or before == "to" or _is_plural_noun(before)
        if (
            w in _AUXILIARIES
            or w in _VERB_FORMS
            or (w in _VERBS and after_subject)
            or (w in _NOUN_VERB_THIRD_PERSON and before in _PRONOUNS)
        ):
            found.append(w)
    return found


def has_claim_verb(text: str) -> bool:
    """Whether a text holds at least one finite-looking verb (a sentence, not a list of terms)."""
    return bool(claim_verbs(text))


def content_stems(texts: Sequence[str]) -> frozenset[str]:
    """The stems of the non-stopwords in some texts (a rubric's vocabulary)."""
    return frozenset(stem(t) for text in texts for t in tokens(text) if t not in STOPWORDS and len(t) > 1)
