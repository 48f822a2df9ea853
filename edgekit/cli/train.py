from __future__ import annotations

import typer

from edgekit.cli.options import OutOpt, RecipeArg, SetOpt, echo


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(recipe: RecipeArg, out: OutOpt = None, set_: SetOpt = None) -> None:
        """Train the recipe's model; writes model.safetensors and training metrics to the run folder."""
        from edgekit import api

        r = api.train(recipe, out, overrides=set_)
        t = r.report.training or {}
        echo(f"test accuracy {t.get('test_accuracy', float('nan')):.4f}; checkpoint {r.run_dir / 'model.safetensors'}")
