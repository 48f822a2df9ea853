from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import OutOpt, RecipeArg, SetOpt, echo


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        recipe: RecipeArg,
        checkpoint: Annotated[Optional[Path], typer.Option(help="weights (.safetensors/.pt state_dict) to export "
                                                                 "instead of training")] = None,
        fmt: Annotated[Optional[list[str]], typer.Option("--format", help="only these formats")] = None,
        no_passes: Annotated[bool, typer.Option("--no-passes", help="export fp32 only, skip the recipe's passes")] = False,
        out: OutOpt = None,
        set_: SetOpt = None,
    ) -> None:
        """Export the recipe's targets (after its passes) and verify each against PyTorch."""
        from edgekit import api

        r = api.export(recipe, checkpoint, set(fmt) if fmt else None, out, compress=not no_passes, overrides=set_)
        for a in r.report.artifacts:
            p = a.parity
            extra = f"cosine {p.cosine:.6f} top1 {p.top1_agreement:.4f} max_abs {p.max_abs:.2e}" if p else a.error
            echo(f"{a.name:<22} {a.status:<7} {a.size_bytes / 1024:8.1f} KiB  {extra}")
        echo(f"run folder: {r.run_dir}")
        if r.report.errors:
            raise typer.Exit(1)
