from __future__ import annotations

import typer

from edgekit.cli.options import RecipeArg, SetOpt, log


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(recipe: RecipeArg, set_: SetOpt = None,
                 show: bool = typer.Option(False, help="print the full recipe with defaults")) -> None:
        """Check a recipe without running it: its schema, its devices, export formats and passes, and the optional
        packages they need (a search recipe: every end of each space, and its `search:` section)."""
        from edgekit import api
        from edgekit.recipe import is_search_recipe

        if is_search_recipe(recipe) and not set_:
            from edgekit.search.run import load_search, preflight_search

            spec, cfg, _ = load_search(recipe)
            preflight_search(spec, None, log)
            typer.echo(f"{recipe}: ok (search, {len(spec.spaces)} spaces: {', '.join(s.path for s in spec.spaces)}; "
                       f"{cfg.trials} trials, strategy {cfg.strategy})")
            return
        r = api.validate(recipe, set_, log=log)
        typer.echo(r.to_yaml() if show else f"{recipe}: ok ({r.name})")
