"""`python -m cli ...` is the `backoffice` command."""

from cli.main import app

app(prog_name="backoffice")
