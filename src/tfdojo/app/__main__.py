"""`python -m tfdojo.app`: the same as `tfdojo web`."""

import typer

from tfdojo.app.cli import web

typer.run(web)
