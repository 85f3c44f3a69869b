"""Forbidden APIs: a static AST check before a submission runs, and runtime guards while it runs.

A forbidden entry is either dotted (``torch.nn.MultiheadAttention``: that object, however it was imported or
aliased) or a bare name (``scaled_dot_product_attention``: any import, name, attribute or string literal spelled
so). The static check cannot follow computed names (``getattr(F, "scaled_dot_" + "product_attention")``,
``eval``, ``sys.modules[...]``); the runtime guards catch those when the forbidden callable is called from code
that is not trusted (the submission, or anything it compiled with exec/eval).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

ALWAYS_FORBIDDEN = ("tfdojo",)  # a submission may not call the reference code it is graded against


@dataclass(frozen=True)
class Violation:
    """One use of a forbidden API: what was used, which entry it matched, and the line (0 when unknown)."""

    used: str
    entry: str
    line: int

    def describe(self) -> str:
        """A sentence a person can act on."""
        where = f"line {self.line}: " if self.line else ""
        return f"{where}uses {self.used} (forbidden: {self.entry}); write it with plain tensor operations"


def matches(dotted: str, entry: str) -> bool:
    """Whether a dotted name (``torch.nn.functional.layer_norm``) is the forbidden entry or inside it."""
    if "." in entry:
        return dotted == entry or dotted.startswith(entry + ".")
    return entry in dotted.split(".")


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``a.b.c`` with the base name resolved through the imports seen (``F`` -> ``torch.nn.functional``)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it is bound to, for every import in the file."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _used_names(tree: ast.AST, aliases: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Every imported module/object, attribute chain, name and string literal, with its line."""
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            yield from ((a.name, line) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, line
            yield from ((f"{node.module}.{a.name}", line) for a in node.names)
        elif isinstance(node, ast.Attribute | ast.Name) and (dotted := _dotted(node, aliases)):
            yield dotted, line
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            yield node.value, line


def find_forbidden(source: str, forbidden: Iterable[str]) -> list[Violation]:
    """The forbidden APIs a submission names, first use of each entry; raises SyntaxError if it does not parse."""
    tree = ast.parse(source)
    aliases = _import_aliases(tree)
    found: dict[str, Violation] = {}
    for dotted, line in sorted(_used_names(tree, aliases), key=lambda item: item[1]):
        for entry in forbidden:
            if entry not in found and matches(dotted, entry):
                found[entry] = Violation(used=dotted, entry=entry, line=line)
    return list(found.values())


class ForbiddenUse(BaseException):  # noqa: N818 - a BaseException so that `except Exception` cannot swallow it
    """Raised inside the sandbox when untrusted code calls a forbidden API."""


class RuntimeGuards:
    """Wraps forbidden callables so that a call with untrusted code on the stack raises ForbiddenUse.

    Trusted code is whatever lives under ``trusted_roots`` (the interpreter, site-packages, tfdojo, the hidden
    tests); everything else — the submission, code it built with exec/eval — is untrusted. Every violation is
    also recorded in ``violations``, so swallowing the exception does not hide it.
    """

    def __init__(self, forbidden: Iterable[str], trusted_roots: Iterable[Path]) -> None:
        self.forbidden = tuple(forbidden)
        self.trusted = tuple(str(Path(r).resolve()) for r in trusted_roots)
        self.violations: list[Violation] = []

    def untrusted_line(self, frame: FrameType | None) -> int | None:
        """The line of the innermost untrusted frame on the stack, or None when all callers are trusted."""
        while frame is not None and frame.f_back is not None:  # the outermost frame is the runner's entry point
            name = frame.f_code.co_filename
            if not (name.startswith(self.trusted) or name.startswith("<frozen ")):
                return frame.f_lineno
            frame = frame.f_back
        return None

    def check(self, used: str, entry: str) -> None:
        """Raise ForbiddenUse (and record it) when untrusted code is on the current stack."""
        line = self.untrusted_line(sys._getframe(2))
        if line is not None:
            violation = Violation(used=used, entry=entry, line=line)
            self.violations.append(violation)
            raise ForbiddenUse(violation.describe())

    def _guard_function(self, fn: Callable[..., Any], used: str, entry: str) -> Callable[..., Any]:
        @wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.check(used, entry)
            return fn(*args, **kwargs)

        return guarded

    def _guard_class(self, cls: type, used: str, entry: str) -> None:
        init = cls.__init__

        @wraps(init)
        def guarded_init(obj: Any, *args: Any, **kwargs: Any) -> None:
            self.check(used, entry)
            init(obj, *args, **kwargs)

        cls.__init__ = guarded_init  # type: ignore[misc]

    def _targets(self, entry: str) -> Iterator[tuple[ModuleType, str]]:
        """(module, attribute) pairs that hold the forbidden object: by identity for dotted entries, else by name."""
        name = entry.rsplit(".", 1)[-1]
        wanted: object = None
        if "." in entry:
            module_name, _, attr = entry.rpartition(".")
            module = sys.modules.get(module_name)
            wanted = getattr(module, attr, None) if module is not None else None
            if wanted is None:
                return
        for module in list(sys.modules.values()):
            members = getattr(module, "__dict__", {})
            if name in members and (wanted is None or members[name] is wanted):
                yield module, name

    def install(self) -> None:
        """Wrap every loaded forbidden callable, and refuse imports of forbidden modules from untrusted code."""
        done: set[int] = set()
        for entry in self.forbidden:
            for module, attr in self._targets(entry):
                obj = getattr(module, attr)
                used = f"{module.__name__}.{attr}"
                if inspect.isclass(obj):
                    if id(obj) not in done:
                        self._guard_class(obj, used, entry)
                elif callable(obj) and not isinstance(obj, ModuleType):
                    try:
                        setattr(module, attr, self._guard_function(obj, used, entry))
                    except (AttributeError, TypeError):
                        continue
                done.add(id(obj))
        self._guard_imports()

    def _guard_imports(self) -> None:
        real_import, real_import_module = builtins.__import__, importlib.import_module
        modules = [e for e in self.forbidden]

        def check_module(name: str) -> None:
            for entry in modules:
                if matches(name, entry):
                    self.check(f"import {name}", entry)

        def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
            check_module(name)
            fromlist = args[2] if len(args) > 2 else kwargs.get("fromlist")
            for item in fromlist or ():
                check_module(f"{name}.{item}")
            return real_import(name, *args, **kwargs)

        def guarded_import_module(name: str, package: str | None = None) -> ModuleType:
            check_module(name)
            return real_import_module(name, package)

        builtins.__import__ = guarded_import
        importlib.import_module = guarded_import_module
