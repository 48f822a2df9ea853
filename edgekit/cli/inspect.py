from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    @app.command("inspect")
    def inspect(
        file: Annotated[Path, typer.Argument(help="an artifact: .onnx, .tflite or .pt2 (its model_card.json beside it)")],
        as_json: Annotated[bool, typer.Option("--json", help="print the metadata as JSON")] = False,
    ) -> None:
        """Print an artifact's I/O spec and deployment metadata: normalization, input layout and dtype, class names,
        recipe sha256 and edgekit version (from the ONNX file's metadata_props, or the model_card.json sidecar)."""
        import json

        from edgekit import api
        from edgekit.export.model_card import format_card

        info = api.inspect(file)
        echo(json.dumps(info, indent=2) if as_json else format_card(info))
