from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import OutOpt, SetOpt, exit_code, summary


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        recipe: Annotated[Optional[Path], typer.Argument(help="recipe YAML file (optional with --resume)")] = None,
        out: OutOpt = None,
        set_: SetOpt = None,
        resume: Annotated[Optional[Path], typer.Option(help="finish an interrupted run folder, reusing its "
                                                            "completed stages")] = None,
        mlflow: Annotated[Optional[bool], typer.Option(
            "--mlflow/--no-mlflow", help="log the run to MLflow (the `mlflow` extra; default: when "
                                         "MLFLOW_TRACKING_URI is set)")] = None,
        force: Annotated[bool, typer.Option("--force", help="replace the run folder already at --out")] = False,
    ) -> None:
        """Run a whole recipe: train, compress, export, verify, bench, gate. Exit 1 if a gate or a target failed."""
        from edgekit import api
        from edgekit.errors import EdgekitError

        if resume is not None:
            if set_ or force or out:
                raise EdgekitError("--set, --out and --force cannot be combined with --resume: the run keeps its "
                                   "recipe and folder")
            r = api.resume(resume, recipe, mlflow=mlflow)
        elif recipe is None:
            raise EdgekitError("give a RECIPE, or --resume RUN_DIR")
        else:
            r = api.run(recipe, out, overrides=set_, mlflow=mlflow, force=force)
        summary(r.report, r.run_dir)
        exit_code(r)
