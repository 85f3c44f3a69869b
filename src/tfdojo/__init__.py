"""tfdojo: the Transformer, built whole and checked, plus the trainer that drills you on it."""

from tfdojo.errors import TfdojoError
from tfdojo.loading import load

__all__ = ["TfdojoError", "load"]
__version__ = "0.1.0"
