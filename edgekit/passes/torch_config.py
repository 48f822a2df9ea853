"""Options every torch-stage pass config shares."""

from __future__ import annotations

from pydantic import Field

from edgekit.config_base import Strict


class TorchPassConfig(Strict):
    latency: bool = Field(default=True, description="after the pass, export the model to a temporary ONNX file and time it "
                                                    "in ONNX Runtime for a moment, so the report shows each pass's speedup")
