"""Reading a TOML file of an exercise folder into a pydantic model, with errors that name the file and field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from tfdojo.errors import ExerciseError

Model = TypeVar("Model", bound=BaseModel)


def read_toml_model(file: Path, model: type[Model]) -> Model:
    """The validated contents of ``file``; ExerciseError naming the file and each bad field otherwise."""
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise ExerciseError(f"{file}: cannot read it ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ExerciseError(f"{file}: not valid TOML ({e})") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(top level)'}: {err['msg']}" for err in e.errors())
        raise ExerciseError(f"{file}: {problems}") from None
