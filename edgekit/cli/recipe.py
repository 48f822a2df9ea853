from __future__ import annotations

import typer

from edgekit.cli.options import RecipeArg, SetOpt, echo


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(recipe: RecipeArg, set_: SetOpt = None,
                 show: bool = typer.Option(False, help="print the full recipe with defaults")) -> None:
        """Check a recipe without running it: its schema, its devices, export formats and passes, and the optional
        packages they need (a search recipe: every end of each space, and its `search:` section)."""
        from edgekit import api

        echo(api.validate(recipe, set_, show))
