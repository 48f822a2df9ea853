from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search(
        recipe: Annotated[Optional[Path], typer.Argument(help="search recipe (a recipe with $choice/$int/$float "
                                                              "spaces and a `search:` section)")] = None,
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="search folder")] = None,
        storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL, e.g. postgresql+psycopg2://u@host/db "
                                                            "(default: sqlite in the search folder)")] = None,
        workers: Annotated[int, typer.Option(min=1, help="worker processes on this machine")] = 1,
        trials: Annotated[Optional[int], typer.Option(min=1, help="override search.trials")] = None,
        study: Annotated[Optional[str], typer.Option(help="study name (default: the recipe name)")] = None,
        resume: Annotated[Optional[Path], typer.Option(help="finish a stopped search folder")] = None,
    ) -> None:
        """Search the recipe's spaces for the best compression chain; writes the trials, summary.md, pareto.png and
        best.yaml (`edgekit run best.yaml` reproduces the best trial). Exit 1 if no trial met the constraints."""
        from edgekit import api
        from edgekit.errors import EdgekitError

        if resume is not None:
            summary = api.search_resume(resume, workers)
        elif recipe is None:
            raise EdgekitError("give a search RECIPE, or --resume SEARCH_DIR")
        else:
            summary = api.search(recipe, out, storage, workers, trials, study)
        from edgekit.search.results import summary_text

        echo(summary_text(summary))
        if not summary["constraints_met"]:
            raise typer.Exit(1)

    @app.command("search-worker")
    def search_worker(
        storage: Annotated[str, typer.Option(help="the search's Optuna storage URL")],
        study: Annotated[str, typer.Option(help="the search's study name")],
        out: Annotated[Path, typer.Option("--out", "-o", help="folder for this worker's trial runs")] = Path("runs/search"),
        worker_id: Annotated[int, typer.Option(min=0, help="distinct per worker: seeds its sampler")] = 1,
    ) -> None:
        """Join a running search (any machine that reaches the storage) and run trials until its budget is used."""
        from edgekit import api

        n = api.search_worker(storage, study, out, worker_id)
        echo(f"worker {worker_id}: ran {n} trials")
