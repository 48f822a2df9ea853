from __future__ import annotations

import typer

from edgekit.cli.options import OutOpt, RecipeArg, SetOpt, log


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(recipe: RecipeArg, out: OutOpt = None, set_: SetOpt = None) -> None:
        """Train the recipe's model; writes model.safetensors and training metrics to the run folder."""
        from edgekit import api
        from edgekit.recipe import load_recipe

        r = api.train(load_recipe(recipe, set_), out, log=log)
        t = r.report.training or {}
        typer.echo(f"test accuracy {t.get('test_accuracy', float('nan')):.4f}; checkpoint {r.run_dir / 'model.safetensors'}")
