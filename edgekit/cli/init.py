"""`edgekit init DIR`: a starter recipe and the device profiles, ready to edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        folder: Annotated[Path, typer.Argument(help="folder to create (or fill)", show_default=False)],
        force: Annotated[bool, typer.Option("--force", help="overwrite files that exist")] = False,
    ) -> None:
        """Copy a starter recipe (quickstart.yaml) and the shipped device profiles (devices/*.yaml) into FOLDER."""
        from edgekit import api

        written = api.init(folder, force=force)
        profiles = [p for p in written if p.parent.name == "devices"]
        echo(f"wrote {folder / 'quickstart.yaml'} and {len(profiles)} device profiles in {folder / 'devices'}")
        echo(f"next: cd {folder} && edgekit run quickstart.yaml   (profiles in ./devices override the shipped ones)")
