"""PyTorch -> ONNX, as one self-contained file with a dynamic batch axis."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgekit.atomic import atomic_path
from edgekit.errors import ExportError
from edgekit.export.artifact import describe

INPUT_NAME, OUTPUT_NAME = "input", "logits"


class OnnxExporter:
    format = "onnx"

    @staticmethod
    def facts(path: Path) -> dict:
        """Inputs, outputs and op counts of a written .onnx, after the full model check (a bad file raises)."""
        from edgekit.onnx_graph import check_onnx_file, op_counts, tensor_specs

        proto = check_onnx_file(path)
        return {"inputs": tensor_specs(proto.graph.input), "outputs": tensor_specs(proto.graph.output),
                "ops": op_counts(proto)}

    def export(self, model, example: np.ndarray, cfg, path: Path, run_dir: Path, name: str):
        import onnx
        import torch

        from edgekit.model_files import load_onnx
        from edgekit.models.inputs import dynamic_axes, input_spec, torch_dynamic_shapes
        from edgekit.onnx_graph import check_onnx_file, op_counts, tensor_specs
        from edgekit.runtimes.base import as_model_input

        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        model = model.eval()
        example = as_model_input(example)
        x = torch.from_numpy(np.ascontiguousarray(example[:2] if cfg.dynamic_batch and len(example) > 1 else example[:1]))
        spec = input_spec(model, example)
        name_in = spec.name
        axes = dynamic_axes(spec, x.ndim, cfg.dynamic_batch)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "model.onnx"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if cfg.exporter == "dynamo":
                        torch.onnx.export(model, (x,), str(raw), dynamo=True, opset_version=cfg.opset,
                                          input_names=[name_in], output_names=[OUTPUT_NAME],
                                          dynamic_shapes=torch_dynamic_shapes(spec, x, cfg.dynamic_batch), verbose=False)
                    else:
                        names = {name_in: {i: n for i, (n, _, _) in axes.items()}} if axes else None
                        if names and 0 in axes:
                            names[OUTPUT_NAME] = {0: axes[0][0]}
                        torch.onnx.export(model, (x,), str(raw), dynamo=False, opset_version=cfg.opset,
                                          input_names=[name_in], output_names=[OUTPUT_NAME], dynamic_axes=names)
            except Exception as e:  # the exporters raise many types; name the model and the cause
                raise ExportError(f"ONNX export of {type(model).__name__} failed: {_first_line(e)}") from e
            proto = load_onnx(raw)  # pulls in side .onnx.data written by the dynamo exporter
            with atomic_path(path) as tmp_path:
                onnx.save(proto, str(tmp_path))
        proto = check_onnx_file(path)
        return describe(
            name, "onnx", "fp32", path, run_dir,
            inputs=tensor_specs(proto.graph.input), outputs=tensor_specs(proto.graph.output), ops=op_counts(proto),
            details={"opset": cfg.opset, "exporter": cfg.exporter, "dynamic_batch": cfg.dynamic_batch,
                     "dynamic_axes": {str(i): n for i, (n, _, _) in axes.items()}},
        )


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
