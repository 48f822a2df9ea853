from __future__ import annotations

import typer

from edgekit.cli.options import RecipeArg, SetOpt


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(recipe: RecipeArg, set_: SetOpt = None,
                 show: bool = typer.Option(False, help="print the full recipe with defaults")) -> None:
        """Check a recipe without running it."""
        from edgekit.recipe import load_recipe

        r = load_recipe(recipe, set_)
        typer.echo(r.to_yaml() if show else f"{recipe}: ok ({r.name})")
