"""PyTorch -> ExecuTorch (.pte): torch.export at a static batch, lowered to XNNPACK; int8 with PT2E.

int8 uses the XNNPACK quantizer (per-channel symmetric int8 weights, per-tensor asymmetric int8 activations). Its
activation ranges come from edgekit's streaming calibrators over every calibration sample (`minmax` by default, as
for TFLite), or from the quantizer's own HistogramObserver (`calibration: histogram`). The delegation summary (what
XNNPACK took, what fell back to portable kernels) goes into the artifact's details.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from edgekit.atomic import atomic_path
from edgekit.errors import ExportError
from edgekit.export.artifact import describe
from edgekit.export.int8 import calibration_samples, finetuned_model
from edgekit.extras import installed_version
from edgekit.quant.options import DEFAULT_PERCENTILE
from edgekit.runtimes.base import fixed_batch

if TYPE_CHECKING:
    import torch

    from edgekit.export.config import ExecutorchExport
    from edgekit.report.schema import Artifact

_STRUCTURAL = {"getitem"}  # the delegate's output unpacking, not a kernel


class ExecutorchExporter:
    format = "executorch"
    static_batch = True  # exports at one fixed batch; int8 calibrates on the calibration split

    def export(self, model: torch.nn.Module, example: np.ndarray, cfg: ExecutorchExport, path: Path, run_dir: Path,
               name: str, *, calibration: np.ndarray | None = None, batch_size: int | None = None,
               log: Callable[[str], None] | None = None) -> Artifact:
        import torch

        from edgekit.models.inputs import input_spec
        from edgekit.runtimes.litert import quiet_stderr

        batch = batch_size or cfg.batch_size or 1
        x = fixed_batch(example, batch)
        details: dict = {"static_batch": batch, "backend": cfg.backend,
                         "exporter": f"executorch {installed_version('executorch', '?')}"}
        calib = calibration_samples(calibration, example, cfg)
        if cfg.precision == "int8" and cfg.finetune is not None:
            model, details["finetune"] = finetuned_model(model, calib, cfg.finetune, log)
        model = model.eval()
        xt = torch.from_numpy(x)
        try:
            with torch.no_grad():
                y = model(xt)
            with warnings.catch_warnings(), quiet_stderr():
                warnings.simplefilter("ignore")
                ep = torch.export.export(model, (xt,))
                if cfg.precision == "int8":
                    c = cfg.calibration
                    ep = quantize_pt2e(ep, xt, calib, batch, c.method, c.percentile, keep_float=c.keep_float)
                    details.update({"calibration": c.method, "calibration_samples": int(len(calib)),
                                    "quantizer": f"XNNPACKQuantizer (torchao {installed_version('torchao', '?')})",
                                    "weights": "per-channel symmetric int8",
                                    "activations": "per-tensor asymmetric int8"})
                    if c.method == "percentile":
                        details["percentile"] = c.percentile
                    if c.keep_float:
                        details["float_modules"] = list(c.keep_float)
                data, deleg = lower(ep)
        except ExportError:
            raise
        except Exception as e:  # torch.export, PT2E and the lowering raise many types
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ExportError(f"ExecuTorch export of {type(model).__name__} failed: {type(e).__name__}: {first}") from e
        if cfg.precision == "int8" and not any("dequantize_per_channel" in op for op in deleg["all_ops"]):
            raise ExportError(f"{Path(path).name}: claimed int8 but the program has no per-channel int8 weights "
                              f"(ops {sorted(deleg['all_ops'])}): nothing was quantized")
        details["delegation"] = {k: v for k, v in deleg.items() if k != "all_ops"}
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        spec = input_spec(model, example)
        return describe(name, "executorch", cfg.precision, path, run_dir,
                        inputs=[{"name": spec.name, "shape": list(x.shape), "dtype": str(x.dtype)}],
                        outputs=[{"name": "output", "shape": list(y.shape), "dtype": "float32"}],
                        ops=deleg["all_ops"], details=details)


def lower(ep) -> tuple[bytes, dict]:
    """The program lowered to XNNPACK as .pte bytes, and its delegation summary."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    summary = delegation_summary(edge.exported_program().graph_module)
    return bytes(edge.to_executorch().buffer), summary


def delegation_summary(graph_module) -> dict:
    """How many edge ops XNNPACK took and which fell back to ExecuTorch's portable kernels (by op type)."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    all_ops: dict[str, int] = {}
    rest: dict[str, int] = {}
    for op, b in info.delegation_by_operator.items():
        if op in _STRUCTURAL:
            continue
        all_ops[op] = b.delegated + b.non_delegated
        if b.non_delegated:
            rest[op] = b.non_delegated
    delegated = sum(all_ops.values()) - sum(rest.values())
    return {"delegate": "XNNPACK" if info.num_delegated_subgraphs else None,
            "partitions": int(info.num_delegated_subgraphs), "ops": sum(all_ops.values()), "delegated": delegated,
            "not_delegated": sum(rest.values()), "not_delegated_ops": dict(sorted(rest.items())),
            "all_ops": dict(sorted(all_ops.items()))}


def quantize_pt2e(ep, example, calib: np.ndarray, batch: int, calibration: str = "minmax",
                  percentile: float = DEFAULT_PERCENTILE, fuse_clamp: bool = True, keep_float: Sequence[str] = ()):
    """PT2E with the XNNPACK quantizer, calibrated on `calib` at the static batch; the re-exported program.
    `fuse_clamp`: a conv followed by a clamp (ReLU6, hardtanh) is quantized after the clamp, as for ReLU (see
    `_clamp_aware_quantizer_class`). The ops of the torch modules named in `keep_float` stay float."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True)
    if calibration != "histogram":
        config = _with_activation_observer(config, calibration, percentile)
    quantizer = XNNPACKQuantizer() if not fuse_clamp else _clamp_aware_quantizer_class()()
    module = ep.module()
    if keep_float:
        quantizer.set_filter_function(float_module_filter(module, keep_float))
    prepared = prepare_pt2e(module, quantizer.set_global(config))
    n = max(batch, (len(calib) + batch - 1) // batch * batch)
    xs = fixed_batch(calib, n)
    with torch.no_grad():
        for i in range(0, n, batch):
            prepared(torch.from_numpy(xs[i: i + batch]))
    return torch.export.export(convert_pt2e(prepared), (example,))


def float_module_filter(module, keep_float: Sequence[str]):
    """A node filter that is False on the ops of the torch modules in `keep_float` (paths as in
    model.named_modules(); a block takes every op inside it); ExportError for a name that matches no op."""
    from torchao.quantization.pt2e.quantizer.utils import get_module_name_filter

    nodes = [n for n in module.graph.nodes if n.op == "call_function"]
    inside = [get_module_name_filter(m) for m in keep_float]
    for m, f in zip(keep_float, inside):
        if not any(f(n) for n in nodes):
            raise ExportError(f"keep_float: module {m!r} names no op of the exported program; give a module path as "
                              "in model.named_modules()")
    return lambda n: not any(f(n) for f in inside)


def _with_activation_observer(config, method: str, percentile: float):
    """The quantization config with its activation observers replaced by one fed to edgekit's `method`."""
    import dataclasses

    kw = {"percentile": percentile} if method == "percentile" else {}
    ctr = _calibrated_observer_class().with_args(method=method, calibrator_kw=kw, eps=2**-12)
    swap = {}
    for field in ("input_activation", "output_activation"):
        spec = getattr(config, field)
        if spec is not None:
            swap[field] = dataclasses.replace(spec, observer_or_fake_quant_ctr=ctr)
    return dataclasses.replace(config, **swap)


_OBSERVER: type | None = None


def _calibrated_observer_class() -> type:
    """A torchao MinMaxObserver whose range comes from an edgekit streaming calibrator (built once, lazily:
    torchao is an optional dependency)."""
    global _OBSERVER
    if _OBSERVER is not None:
        return _OBSERVER
    import torch
    from torchao.quantization.pt2e.observer import MinMaxObserver

    from edgekit.quant.calibrate import make_calibrator

    class CalibratedObserver(MinMaxObserver):
        def __init__(self, *args, method: str = "minmax", calibrator_kw: dict | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.calibrator = make_calibrator(method, **(calibrator_kw or {}))
            self.seen = False

        def forward(self, x_orig):
            if x_orig.numel():
                self.calibrator.update(x_orig.detach().float().cpu().numpy())
                self.seen = True
            return super().forward(x_orig)

        def calculate_qparams(self):
            if not self.seen:
                return super().calculate_qparams()
            lo, hi = self.calibrator.compute_range()
            return self._calculate_qparams(torch.tensor(min(float(lo), 0.0)), torch.tensor(max(float(hi), 0.0)))

    _OBSERVER = CalibratedObserver
    return _OBSERVER


_QUANTIZER: type | None = None


def _clamp_aware_quantizer_class() -> type:
    """The XNNPACK quantizer, plus conv -> hardtanh (ReLU6) annotated as one pattern with its output quantized
    after the clamp. The stock quantizer fuses only conv -> relu, so in a ReLU6 network (MobileNet, EfficientNet-Lite)
    every conv output is quantized before the clamp, on its whole pre-activation range, and most of the 256 levels
    fall outside [0, 6]; XNNPACK then runs the clamp fused into the conv either way."""
    global _QUANTIZER
    if _QUANTIZER is not None:
        return _QUANTIZER
    import torch
    from executorch.backends.xnnpack.quantizer import xnnpack_quantizer_utils as xu
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    clamps = (torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default)
    convs = (torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default)

    def annotate_conv_clamp(gm, config, keep=None) -> None:
        for clamp in gm.graph.nodes:
            if clamp.op != "call_function" or clamp.target not in clamps:
                continue
            conv = clamp.args[0]
            if not isinstance(conv, torch.fx.Node) or conv.target not in convs or len(conv.users) > 1:
                continue
            if keep is not None and not (keep(conv) and keep(clamp)):
                continue
            x, w = cast(Any, conv.args[0]), cast(Any, conv.args[1])  # fx Nodes (Argument is not hashable to pyright)
            qspecs: dict[Any, Any] = {x: xu.get_input_act_qspec(config), w: xu.get_weight_qspec(config)}
            partition = [clamp, conv, w]
            bias = conv.args[2] if len(conv.args) > 2 else None
            if isinstance(bias, torch.fx.Node):
                qspecs[bias] = xu.get_bias_qspec(config)
                partition.append(bias)
            if xu._is_annotated(partition):
                continue
            conv.meta[xu.Q_ANNOTATION_KEY] = xu.QuantizationAnnotation(input_qspec_map=qspecs, _annotated=True)
            clamp.meta[xu.Q_ANNOTATION_KEY] = xu.QuantizationAnnotation(
                output_qspec=xu.get_output_act_qspec(config), _annotated=True)
            xu._mark_nodes_as_annotated(partition)

    class ClampAwareXNNPACKQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            if self.global_config is not None:
                annotate_conv_clamp(model, self.global_config, self.filter_fn)
            return super().annotate(model)

    _QUANTIZER = ClampAwareXNNPACKQuantizer
    return _QUANTIZER
