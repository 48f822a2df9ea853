from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import RecipeArg, SetOpt, echo


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
        from edgekit import api
        from edgekit.analyze import format_table

        echo(format_table(api.analyze(recipe, checkpoint, prune_ratio, threshold, overrides=set_, json_out=json_out)))
        if json_out:
            echo(f"\nwrote {json_out}")
