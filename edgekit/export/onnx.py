"""PyTorch -> ONNX: `export_onnx`, the one call of torch.onnx.export, and the exporter stage's self-contained file
with a dynamic batch axis."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.atomic import atomic_path
from edgekit.errors import ExportError
from edgekit.export.artifact import describe

if TYPE_CHECKING:
    import torch

    from edgekit.export.config import OnnxExport
    from edgekit.report.schema import Artifact

INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(module, sample, path: Path, *, exporter: str = "auto", opset: int = 18, input_name: str = INPUT_NAME,
                output_name: str = OUTPUT_NAME, dynamic_axes: dict | None = None, dynamic_shapes=None,
                external_data: bool = False) -> str:
    """Write `module` traced on `sample` (an array or tensor, or a tuple of them) to `path`; returns the exporter
    used. `exporter`: "legacy" (TorchScript tracing, fast), "dynamo" (torch.export) or "auto" (legacy, else dynamo;
    dynamo straight away for exported graphs such as PT2E-quantized ones, which legacy has no symbolic for).
    `dynamic_axes` go to legacy, `dynamic_shapes` to dynamo. The module is exported as it is (call .eval() first)."""
    import torch

    args = tuple(s if isinstance(s, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(s))
                 for s in (sample if isinstance(sample, tuple) else (sample,)))
    names = {"input_names": [input_name], "output_names": [output_name], "opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "legacy" or (exporter == "auto" and not isinstance(module, torch.fx.GraphModule)):
            try:
                torch.onnx.export(module, args, str(path), dynamo=False, dynamic_axes=dynamic_axes, **names)
                return "legacy"
            except Exception:  # some models only the dynamo exporter can trace
                if exporter == "legacy":
                    raise
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        prog = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=dynamic_shapes, verbose=False, **names)
        assert prog is not None  # dynamo=True without a file returns the program
        prog.save(str(path), external_data=external_data)
        return "dynamo"


class OnnxExporter:
    format = "onnx"

    @staticmethod
    def facts(path: Path) -> dict:
        """Inputs, outputs and op counts of a written .onnx, after the full model check (a bad file raises)."""
        from edgekit.onnx_graph import check_onnx_file, op_counts, tensor_specs

        proto = check_onnx_file(path)
        return {"inputs": tensor_specs(proto.graph.input), "outputs": tensor_specs(proto.graph.output),
                "ops": op_counts(proto)}

    def export(self, model: torch.nn.Module, example: np.ndarray, cfg: OnnxExport, path: Path, run_dir: Path,
               name: str) -> Artifact:
        import onnx
        import torch

        from edgekit.model_files import load_onnx
        from edgekit.models.inputs import dynamic_axes, input_spec, torch_dynamic_shapes
        from edgekit.onnx_graph import check_onnx_file, op_counts, tensor_specs
        from edgekit.runtimes.base import as_model_input

        model = model.eval()
        example = as_model_input(example)
        x = torch.from_numpy(np.ascontiguousarray(example[:2] if cfg.dynamic_batch and len(example) > 1 else example[:1]))
        spec = input_spec(model, example)
        name_in = spec.name
        axes = dynamic_axes(spec, x.ndim, cfg.dynamic_batch)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "model.onnx"
            try:
                if cfg.exporter == "dynamo":
                    export_onnx(model, x, raw, exporter="dynamo", opset=cfg.opset, input_name=name_in,
                                dynamic_shapes=torch_dynamic_shapes(spec, x, cfg.dynamic_batch), external_data=True)
                else:
                    names = {name_in: {i: n for i, (n, _, _) in axes.items()}} if axes else None
                    if names and 0 in axes:
                        names[OUTPUT_NAME] = {0: axes[0][0]}
                    export_onnx(model, x, raw, exporter="legacy", opset=cfg.opset, input_name=name_in,
                                dynamic_axes=names)
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
