"""Chat templates: the jinja2 program a model ships to lay out a conversation as one prompt string.

Rendered in jinja2's immutable sandbox (a template is data from a file and may not touch Python objects),
with the options Hugging Face uses so that the same template yields the same string: ``trim_blocks``,
``lstrip_blocks``, the ``loopcontrols`` extension and a ``raise_exception`` helper.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tfdojo.errors import TokenizerError


def _raise_exception(message: str) -> None:
    """Lets a template reject a conversation (e.g. roles out of order) with its own message."""
    raise TokenizerError(f"the chat template rejected the conversation: {message}")


def _tojson(value: Any, indent: int | None = None) -> str:
    """JSON without escaping non-ASCII, as templates written for tool calls expect."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


@lru_cache(maxsize=8)
def compile_template(source: str) -> Template:
    """Parse a template once; a syntax error becomes a TokenizerError."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except TemplateError as e:
        raise TokenizerError(f"the chat template does not parse: {e}. Fix or replace the template.") from e


def render_chat(
    source: str, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool, **special_tokens: Any
) -> str:
    """The prompt string for ``messages`` (dicts with "role" and "content")."""
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise TokenizerError(f"message {i} must be a dict with 'role' and 'content', got {m!r}")
    try:
        return compile_template(source).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **special_tokens
        )
    except TemplateError as e:
        raise TokenizerError(f"the chat template failed to render: {e}") from e
