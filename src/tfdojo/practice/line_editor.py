"""Reading an answer: a real line editor on a terminal (prompt_toolkit), plain lines otherwise.

On a terminal the answer is edited in place: arrow keys move the cursor, a paste arrives whole (bracketed paste,
so a blank line or a 10,000-character line inside it never submits or splits it), and the time left runs in the
bottom bar from the moment the question is shown, so nothing typed is lost to a separate countdown. A multi-line
answer is submitted with Enter on an empty line, or Alt+Enter (Esc then Enter) anywhere; Ctrl-X Ctrl-E opens it
in ``$EDITOR``. Without a terminal (a pipe, a test) lines are read one by one with the same rules.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

QUIT, SKIP, HINT, IDK, WHY, EDIT = ":quit", ":skip", ":hint", ":idk", ":why", ":edit"
COMMANDS = (QUIT, SKIP, HINT, IDK, WHY, EDIT)
SUBMIT_HELP = "Enter on an empty line or Alt+Enter submits · Ctrl-X Ctrl-E or :edit opens $EDITOR"


def clock(seconds: float) -> str:
    """Seconds as m:ss (negative once the time is up)."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    return f"{sign}{s // 60}:{s % 60:02d}"


def command_in(text: str) -> str | None:
    """The drill command the text is (":hint", ":skip", …), or None for an answer."""
    word = text.strip().lower()
    return word if word in COMMANDS else None


@dataclass(frozen=True)
class Reply:
    """What was typed: an answer (``command`` None), or one of :data:`COMMANDS` with the text typed before it."""

    text: str
    command: str | None = None


class Reader(Protocol):
    """Reads one reply; raises EOFError on Ctrl-D and KeyboardInterrupt on Ctrl-C."""

    def read(self, label: str, multiline: bool, deadline: float | None, hints: str, default: str = "") -> Reply: ...


def _reply(text: str) -> Reply:
    """An answer, or a command on the last line (the text above it is kept as the draft)."""
    above, _, last = text.rstrip().rpartition("\n")
    command = command_in(last)
    return Reply(above.strip(), command) if command else Reply(text.strip())


class LineReader:
    """Plain lines from standard input (no terminal): a multi-line answer ends at an empty line."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write or (lambda text: print(text, end="", flush=True))

    def _line(self, prompt: str) -> str:
        self.write(prompt)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def read(self, label: str, multiline: bool, deadline: float | None, hints: str, default: str = "") -> Reply:
        """One reply; lines typed add to ``default`` (the draft so far), and an empty line submits them."""
        left = f"{clock(deadline - time.monotonic())} left " if deadline is not None else ""
        lines = default.splitlines() if multiline else []
        while True:
            line = self._line(f"{left}{label}> ")
            if command_in(line):
                return Reply("\n".join(lines).strip(), command_in(line))
            if not multiline:
                return Reply(line.strip() or default)
            if not line.strip() and lines:
                return Reply("\n".join(lines).strip())
            if line.strip() or lines:
                lines.append(line)


class EditorReader:
    """prompt_toolkit's editor, one history across the drill (see the module docstring for the keys)."""

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession

        self.session: PromptSession[str] = PromptSession()

    def read(self, label: str, multiline: bool, deadline: float | None, hints: str, default: str = "") -> Reply:
        """One reply, edited in place."""
        from prompt_toolkit.key_binding import KeyBindings

        keys = KeyBindings()

        @keys.add("enter")
        def _enter(event) -> None:  # noqa: ANN001 - prompt_toolkit's event
            buffer = event.current_buffer
            text = buffer.text
            on_empty_line = buffer.document.is_cursor_at_the_end and buffer.document.current_line.strip() == ""
            if not multiline or command_in(buffer.document.current_line) or (on_empty_line and text.strip()):
                buffer.text = text.rstrip()
                buffer.validate_and_handle()
            else:
                buffer.insert_text("\n")

        @keys.add("escape", "enter")
        def _submit(event) -> None:  # noqa: ANN001
            event.current_buffer.validate_and_handle()

        def toolbar() -> str:
            left = f"⏱ {clock(deadline - time.monotonic())} left · " if deadline is not None else ""
            return f" {left}{hints}"

        text = self.session.prompt(
            f"{label}> ",
            default=default,
            multiline=multiline,
            key_bindings=keys,
            bottom_toolbar=toolbar,
            refresh_interval=0.5 if deadline is not None else 0,
            enable_open_in_editor=True,
            prompt_continuation=lambda width, line_number, wrap_count: "." * (width - 1) + " ",
        )
        return _reply(text)


def make_reader() -> Reader:
    """The editor on a terminal, plain lines otherwise."""
    return EditorReader() if sys.stdin.isatty() and sys.stdout.isatty() else LineReader()
