from __future__ import annotations

import typer

from edgekit.cli.options import OutOpt, RecipeArg, SetOpt, log


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(recipe: RecipeArg, out: OutOpt = None, set_: SetOpt = None) -> None:
        """Run a whole recipe: train, compress, export, verify, bench, gate. Exit 1 if a gate or a target failed."""
        from edgekit import api
        from edgekit.report.gates import format_table
        from edgekit.report.markdown import results_table

        r = api.run(recipe, out, overrides=set_, log=log)
        typer.echo(results_table(r.report))
        if r.report.gates:
            typer.echo("\n" + format_table(r.report.gates))
        typer.echo(f"\nrun folder: {r.run_dir}")
        failed = [g for g in r.report.gates if not g.passed and g.severity == "error"]
        if r.report.errors:
            typer.secho(f"{len(r.report.errors)} stage(s) failed; see report.md", fg="red", err=True)
        if failed or r.report.errors:
            raise typer.Exit(1)
