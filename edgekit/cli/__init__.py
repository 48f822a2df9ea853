"""The `edgekit` command: a thin Typer layer; each command builds a config and calls edgekit.api."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(name="edgekit", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Train, compress, export, verify and benchmark models for edge devices.")

_state = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from edgekit import __version__

        typer.echo(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print nothing but errors")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also debug lines and third-party warnings")] = False,
) -> None:
    from edgekit.console import set_verbosity

    _state["debug"] = debug
    set_verbosity(-1 if quiet else 1 if verbose else 0)


def _register() -> None:
    from edgekit.cli import (
        analyze,
        bench,
        compare,
        devices,
        env,
        export,
        gate,
        init,
        inspect,
        profile,
        recipe,
        run,
        search,
        train,
    )

    for mod in (init, run, train, export, bench, gate, compare, inspect, recipe, devices, analyze, profile, search, env):
        mod.register(app)


def _error(text: str) -> None:
    typer.secho(f"error: {text}", fg="red", err=True)


def _usage_error(e: typer.TyperException) -> int:
    """Typer's parsing errors (its own copy of click's): one line and a hint instead of the usage block."""
    ctx = getattr(e, "ctx", None)
    text = e.format_message()
    if type(e).__name__ == "NoArgsIsHelpError":  # a group without a command: its help (rich prints it itself)
        if text.strip():
            typer.echo(text, err=True)
        return e.exit_code
    if getattr(e, "possibilities", None):  # an unknown option close to known ones
        text = f"{e.message}. Did you mean {' or '.join(sorted(e.possibilities))}?"
    text = " ".join(text.split())
    _error(text[:1].lower() + text[1:])
    if e.exit_code == 2:
        typer.echo(f"hint: {ctx.command_path if ctx is not None else 'edgekit'} --help", err=True)
    return e.exit_code


def main() -> None:
    """Entry point: format errors in one place, without a traceback unless --debug."""
    from edgekit.errors import EdgekitError

    debug = "--debug" in sys.argv
    try:
        _register()
        rc = app(prog_name="edgekit", standalone_mode=False)  # returns the code of a typer.Exit raised by a command
    except EdgekitError as e:
        if _state["debug"] or debug:
            raise
        _error(str(e))
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as e:
        sys.exit(_usage_error(e))
    except OSError as e:
        if _state["debug"] or debug:
            raise
        _error(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e) or type(e).__name__)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)
