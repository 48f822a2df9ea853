"""The `edgekit` command: a thin Typer layer; each command builds a config and calls edgekit.api."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(name="edgekit", no_args_is_help=True, add_completion=False,
                  help="Train, compress, export, verify and benchmark models for edge devices.")

_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show tracebacks for errors")) -> None:
    _state["debug"] = debug


def _register() -> None:
    from edgekit.cli import analyze, bench, compare, devices, export, gate, profile, recipe, run, search, train

    for mod in (run, train, export, bench, gate, compare, recipe, devices, analyze, profile, search):
        mod.register(app)


def main() -> None:
    """Entry point: format edgekit errors in one place, without a traceback unless --debug."""
    import click

    from edgekit.errors import EdgekitError

    _register()
    try:
        rc = app(standalone_mode=False)  # returns the code of a typer.Exit raised by a command
    except EdgekitError as e:
        if _state["debug"] or "--debug" in sys.argv:
            raise
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.secho("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # usage errors
        e.show()
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)
