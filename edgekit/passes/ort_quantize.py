"""Post-training quantization of the fp32 ONNX export with ONNX Runtime: static INT8, dynamic INT8, FP16."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from edgekit.config_base import Strict, Tolerance
from edgekit.console import progress
from edgekit.errors import PassError
from edgekit.handles import OnnxFile
from edgekit.names import Name
from edgekit.passes.base import FilePass, PassContext, Written
from edgekit.passes.quant_run import QuantRun
from edgekit.quant.candidate import Candidate, failed, rows
from edgekit.quant.mixed_precision import FallbackConfig, mixed_precision
from edgekit.quant.options import Calibration, lift_calibration
from edgekit.quant.ort_build import QTYPE, QuantSpec, build_candidate, int8_cost_notes, preprocess, preprocess_note
from edgekit.quant.refine import AdaRoundOptions, adaround, bias_correction
from edgekit.quant.selection import fastest_faithful

ORT_LEGACY_KEYS = {"calibration": "method", "percentile": "percentile", "calibration_size": "samples",
                   "exclude_nodes": "keep_float"}  # flat keys of older quantize.static recipes -> `calibration:`
ORT_OLD_PERCENTILE = 99.999  # quantize.static's percentile before the shared sub-config


def lift_ort_calibration(data: Any, legacy: dict[str, str] = ORT_LEGACY_KEYS) -> Any:
    """`lift_calibration` for the ONNX passes' older flat keys, keeping their meaning: a flat `calibration:
    percentile` without `percentile` means 99.999 (the default then), and a flat `percentile` beside another method
    (older report.json recipes spell every default out) meant nothing and is dropped."""
    if not isinstance(data, dict):
        return data
    flat_method = data.get("calibration") if isinstance(data.get("calibration"), str) else None
    if flat_method is not None and "percentile" in legacy:
        data = dict(data)
        if flat_method != "percentile":
            data.pop("percentile", None)
        else:
            data.setdefault("percentile", ORT_OLD_PERCENTILE)
    return lift_calibration(data, legacy)


class StaticQuantConfig(Strict):
    """Static INT8 (calibrated activations). `auto` picks the format by measuring candidates on this host."""

    name: Literal["quantize.static"]
    artifact: Name = "onnx-int8"
    format: Literal["auto", "qdq", "qoperator"] = "auto"
    activation_type: Literal["auto", "uint8", "int8"] = "auto"
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: Literal["auto", True, False] = Field(
        default="auto", description="auto tries per-channel and per-tensor weights; per-channel wins ties")
    reduce_range: bool = False
    calibration: Calibration = Field(default_factory=Calibration, description="activation ranges (method, percentile), "
                                     "calibration samples and ONNX node names kept in float")
    calibrator: Literal["edgekit", "onnxruntime"] = Field(
        default="edgekit",
        description="who computes entropy/percentile/mse ranges: edgekit's streaming calibrators (bounded memory, progress "
                    "with ETA; handed to ORT as tensor range overrides) or ORT's own (keeps all activations in memory; no "
                    "mse)")
    agreement_slack: float = Field(
        default=0.005, ge=0, le=1,
        description="auto: candidates within this top-1 agreement of the best are 'accurate enough'; the fastest wins")
    cosine_slack: float = Field(default=0.002, ge=0, le=1, description="auto: and within this mean cosine of the best")
    speed_margin: float = Field(default=0.05, ge=0, description="auto: latencies closer than this fraction are a tie, "
                                                                "which the more faithful candidate wins")
    select_time_s: float = Field(default=0.5, gt=0, description="auto: timing budget per candidate")
    saturation_safe: Literal["auto", True, False] = Field(
        default="auto", description="QDQ U8S8: re-scale int8 weights so the int16 pair sums of x86 kernels without VNNI "
                                    "cannot saturate (auto: on such CPUs; see edgekit.quant.onnx_rewrite)")
    bias_correction: Literal["auto", True, False] = Field(
        default="auto", description="QDQ: remove each layer's weight-rounding shift dW E[x] through its bias, measured on "
                                    "the calibration data (auto: kept when it raises validation cosine)")
    adaround: AdaRoundOptions | None = Field(default=None, description="learned rounding of the weights (QDQ per-channel)")
    fallback: FallbackConfig | None = Field(default=None, description="keep the most sensitive layers in float until "
                                                                       "these validation bounds are met")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.98, min_top1_agreement=0.9))

    @model_validator(mode="before")
    @classmethod
    def _flat_calibration_keys(cls, data):
        return lift_ort_calibration(data)

    @model_validator(mode="after")
    def _options_fit_the_format(self):
        if self.calibration.method == "mse" and self.calibrator == "onnxruntime":
            raise ValueError("calibration: mse exists only in edgekit's calibrators (calibrator: edgekit)")
        if self.calibration.method == "mse" and self.format == "qoperator":
            raise ValueError("calibration: mse needs format: qdq (ORT's QOperator quantizer misapplies range overrides)")
        if self.adaround is not None and (self.format == "qoperator" or self.per_channel is False):
            raise ValueError("adaround needs format: qdq and per-channel weights (it rounds on the QDQ weight grid)")
        return self


class DynamicQuantConfig(Strict):
    """Dynamic INT8: weights int8, activations quantized at run time. For Linear/MatMul-heavy models."""

    name: Literal["quantize.dynamic"]
    artifact: Name = "onnx-int8-dynamic"
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: bool = True
    op_types: list[str] = Field(default_factory=lambda: ["MatMul", "Attention", "LSTM", "Gather"],
                                description="Conv is left out by default: ConvInteger is slower than fp32")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.98, min_top1_agreement=0.9))


class Fp16Config(Strict):
    name: Literal["quantize.fp16"]
    artifact: Name = "onnx-fp16"
    keep_io_types: bool = Field(default=True, description="keep float32 inputs/outputs")
    tolerance: Tolerance = Field(default_factory=lambda: Tolerance(min_cosine=0.999, min_top1_agreement=0.98))


class StaticQuantize(FilePass):
    """Static INT8 with one scheme: the configured settings, or with `auto` settings the combinations they allow,
    chosen by the fastest-faithful rule (edgekit.quant.selection), then AdaRound, bias correction and mixed
    precision on the chosen one."""

    name = "quantize.static"
    takes = returns = OnnxFile

    def candidates(self) -> list[tuple[str, str, bool]]:
        c = self.config
        formats = ["qdq", "qoperator"] if c.format == "auto" else [c.format]
        acts = ["uint8", "int8"] if c.activation_type == "auto" else [c.activation_type]
        chans = [True, False] if c.per_channel == "auto" else [c.per_channel]
        combos = [(f, a, pc) for pc in chans for f in formats for a in acts]
        if c.format == "auto" and c.activation_type == "auto":  # S8S8 QOperator is rarely a fast kernel path
            combos = [k for k in combos if k[:2] != ("qoperator", "int8")]
        return combos

    def spec(self, fmt: str, act: str, per_channel: bool) -> QuantSpec:
        c = self.config
        return QuantSpec(format=fmt, activation_type=act, per_channel=per_channel, weight_type=c.weight_type,
                         reduce_range=c.reduce_range, calibration=c.calibration.method, calibrator=c.calibrator,
                         percentile=c.calibration.percentile, exclude_nodes=tuple(c.calibration.keep_float),
                         saturation_safe=c.saturation_safe)

    def build(self, pre: Path, dst: Path, fmt: str, act: str, per_channel: bool, ctx: PassContext,
              float_nodes: list[str] | None = None) -> Candidate:
        """One candidate of this config as the pass builds it (before AdaRound and bias correction)."""
        run = QuantRun.of(ctx, self.config.calibration.samples)
        return build_candidate(pre, dst, self.spec(fmt, act, per_channel), run.calib, run.ev, float_nodes)

    def refined(self, pre: Path, dst: Path, spec: QuantSpec, run: QuantRun, float_nodes: list[str] | None = None
                ) -> tuple[Candidate, str]:
        """A candidate after this config's AdaRound and bias correction, and what they did."""
        cand = build_candidate(pre, dst, spec, run.calib, run.ev, float_nodes)
        why = adaround(cand, run.x_calib, run.ev, self.config.adaround, run.log)
        return cand, why + bias_correction(cand, run.calib.x, run.ev, self.config.bias_correction)

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        c = self.config
        src = source.path
        run = QuantRun.of(ctx, c.calibration.samples)
        combos = self.candidates()
        cands: list[Candidate] = []
        with tempfile.TemporaryDirectory(prefix="edgekit-quant-") as tmp:
            tmp = Path(tmp)
            pre, pre_error = preprocess(src, tmp / "pre.onnx", ctx.log)
            fp32_ms = run.time_ms(src, c.select_time_s) if len(combos) > 1 else None
            with progress("candidate", len(combos), log=ctx.log) as bar:
                for fmt, act, pc in combos:
                    path = tmp / f"{fmt}-{act}-{'pc' if pc else 'pt'}.onnx"
                    try:
                        cand = build_candidate(pre, path, self.spec(fmt, act, pc), run.calib, run.ev)
                        if len(combos) > 1:
                            cand.latency["p50"] = run.time_ms(path, c.select_time_s)
                    except Exception as e:  # one failing candidate must not lose the others
                        cand = failed(Candidate(format=fmt, activation_type=act, per_channel=pc), e)
                        first = (str(cand.error).strip().splitlines() or [""])[0]
                        ctx.log(f"  candidate {fmt} {act} {'per-channel' if pc else 'per-tensor'} failed: {first}")
                    cands.append(cand)
                    bar.update(note=path.stem)
            ok = [r for r in cands if r.built]
            if not ok:
                raise PassError(f"quantize.static: every candidate failed: {[r.error for r in cands]}")
            chosen, decision = fastest_faithful(ok, fp32_ms, c.agreement_slack, c.cosine_slack, c.speed_margin)
            decision += adaround(chosen, run.x_calib, run.ev, c.adaround, ctx.log)
            decision += bias_correction(chosen, run.calib.x, run.ev, c.bias_correction)
            if c.fallback is not None:
                spec = self.spec(str(chosen.format), str(chosen.activation_type), bool(chosen.per_channel))
                chosen, steps, note = mixed_precision(
                    chosen, c.fallback, run.ev.x[:32],
                    build=lambda nodes, path: self.refined(pre, path, spec, run, nodes)[0],
                    probe=lambda nodes, path: build_candidate(pre, path, spec, run.calib, run.ev, nodes),
                    time_ms=lambda path: run.time_ms(path, c.select_time_s), tmp=tmp, log=ctx.log)
                cands += steps
                decision += note
            out.write_bytes(chosen.file.read_bytes())
        details = {"format": chosen.format, "activation_type": chosen.activation_type,
                   "weight_type": c.weight_type, "per_channel": chosen.per_channel,
                   "saturation_safe": bool(chosen.saturation_safe),
                   "bias_correction": bool((chosen.bias_correction or {}).get("kept")),
                   "adaround": bool((chosen.adaround or {}).get("kept")),
                   "float_nodes": [*c.calibration.keep_float, *chosen.float_nodes],
                   "calibration": c.calibration.method, "calibration_samples": int(len(ctx.splits.x_calib)),
                   "preprocessed": pre_error is None}
        timed = fp32_ms is not None
        return Written(precision="int8", details=details, decision=decision, candidates=rows(cands, chosen),
                       notes=preprocess_note(pre_error) + int8_cost_notes(src, out, fp32_ms, chosen.latency_ms_p50),
                       before={"latency_ms_p50_selection": fp32_ms} if timed else {},
                       after={"latency_ms_p50_selection": chosen.latency_ms_p50} if timed else {})


INTEGER_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM", "ConvInteger", "QAttention")
FLOAT_WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "LSTM", "GRU", "Attention")  # with a float weight: left in float


class DynamicQuantize(FilePass):
    name = "quantize.dynamic"
    takes = returns = OnnxFile

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        from onnxruntime import quantization as q

        from edgekit.onnx_graph import check_onnx_file, initializer_bytes

        c = self.config
        with tempfile.TemporaryDirectory() as tmp:
            pre, pre_error = preprocess(source.path, Path(tmp) / "pre.onnx", ctx.log)
            q.quantize_dynamic(str(pre), str(out), per_channel=c.per_channel,
                               weight_type=getattr(q.QuantType, QTYPE[c.weight_type]), op_types_to_quantize=c.op_types)
        proto = check_onnx_file(out)
        nodes = proto.graph.node
        weights = {i.name for i in proto.graph.initializer}
        ops = {n.op_type for n in nodes}
        notes = preprocess_note(pre_error)
        if not ops & set(INTEGER_OPS):
            notes.append(f"no layer of types {c.op_types} was quantized: the model has none (ops: {sorted(ops)})")
        details = {"weight_type": c.weight_type, "op_types": c.op_types,
                   "quantized_nodes": [n.name or n.output[0] for n in nodes if n.op_type in INTEGER_OPS],
                   "float_weight_nodes": [n.name or n.output[0] for n in nodes
                                          if n.op_type in FLOAT_WEIGHT_OPS and weights & set(n.input)],
                   "weight_bytes": initializer_bytes(proto), "preprocessed": pre_error is None}
        return Written(precision="int8-dynamic", details=details, notes=notes)


class Fp16(FilePass):
    name = "quantize.fp16"
    takes = returns = OnnxFile

    def transform(self, source: OnnxFile, out: Path, ctx: PassContext) -> Written:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        from edgekit.model_files import load_onnx
        from edgekit.onnx_graph import toposort

        proto = convert_float_to_float16(load_onnx(source.path), keep_io_types=self.config.keep_io_types)
        toposort(proto.graph)  # the converter appends its input casts after their users
        onnx.save(proto, str(out))
        return Written(precision="fp16", details={"keep_io_types": self.config.keep_io_types},
                       notes=["ONNX Runtime's CPU provider has few fp16 kernels: expect casts and no CPU speedup; "
                              "fp16 is for GPU providers and for halving the file"])
