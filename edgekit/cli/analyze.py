from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import RecipeArg, SetOpt, log


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze(
        recipe: RecipeArg,
        checkpoint: Annotated[Optional[Path], typer.Option(help="trained weights (default: train the model)")] = None,
        prune_ratio: Annotated[float, typer.Option(min=0.01, max=0.99, help="channels removed per layer")] = 0.5,
        threshold: Annotated[float, typer.Option(min=0.0, help="accuracy drop that makes a layer sensitive")] = 0.01,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="write the full result here")] = None,
        set_: SetOpt = None,
    ) -> None:
        """Per-layer sensitivity to int8 quantization and to pruning, ranked, with layers to protect or keep in float."""
        from edgekit.analyze import analyze as run_analysis
        from edgekit.analyze import format_table
        from edgekit.recipe import load_recipe

        result = run_analysis(load_recipe(recipe, set_), checkpoint, prune_ratio, threshold, log=log)
        typer.echo(format_table(result))
        if json_out:
            json_out.write_text(json.dumps(result, indent=2))
            typer.echo(f"\nwrote {json_out}")
