"""``python -m tfdojo …`` (and ``torchrun -m tfdojo train …``): the same command line as ``tfdojo``."""

from tfdojo.cli import app

app()
