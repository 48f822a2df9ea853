from __future__ import annotations

import typer

from edgekit.cli.options import RecipeArg, SetOpt


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(recipe: RecipeArg, set_: SetOpt = None,
                 show: bool = typer.Option(False, help="print the full recipe with defaults")) -> None:
        """Check a recipe (or a search recipe: its spaces, every end of each, and its `search:` section) without
        running it."""
        import yaml

        from edgekit.recipe import load_recipe

        if recipe.is_file() and "search" in (yaml.safe_load(recipe.read_text()) or {}) and not set_:
            from edgekit.search.run import load_search

            spec, cfg, _ = load_search(recipe)
            typer.echo(f"{recipe}: ok (search, {len(spec.spaces)} spaces: {', '.join(s.path for s in spec.spaces)}; "
                       f"{cfg.trials} trials, strategy {cfg.strategy})")
            return
        r = load_recipe(recipe, set_)
        typer.echo(r.to_yaml() if show else f"{recipe}: ok ({r.name})")
