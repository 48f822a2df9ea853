"""Each ONNX quantization pass produces a runnable artifact within tolerance of the fp32 reference."""

import pytest
from helpers import onnx_pass_setup

from edgekit.export.config import OnnxExport
from edgekit.export.onnx import OnnxExporter
from edgekit.export.parity import compare
from edgekit.passes import get_pass
from edgekit.passes.apply import apply_pass
from edgekit.passes.ort_quantize import DynamicQuantConfig, Fp16Config, StaticQuantConfig
from edgekit.runtimes import get_runtime
from edgekit.train.trainer import predict


@pytest.fixture(scope="module")
def onnx_fp32(cnn, splits, tmp_path_factory):
    return onnx_pass_setup(cnn, splits, tmp_path_factory.mktemp("run"))


CASES = {
    "static-qdq-u8s8": (StaticQuantConfig(name="quantize.static", format="qdq", activation_type="uint8",
                                          per_channel=True), "int8", 0.98),
    "static-qoperator-entropy": (StaticQuantConfig(name="quantize.static", format="qoperator", activation_type="uint8",
                                                   per_channel=False, calibration="entropy"), "int8", 0.98),
    "static-percentile-s8s8": (StaticQuantConfig(name="quantize.static", format="qdq", activation_type="int8",
                                                 per_channel=False, calibration="percentile"), "int8", 0.97),
    "dynamic": (DynamicQuantConfig(name="quantize.dynamic", op_types=["MatMul", "Gemm", "Conv"]), "int8-dynamic", 0.98),
    "fp16": (Fp16Config(name="quantize.fp16"), "fp16", 0.9999),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_quantized_artifact_runs_within_tolerance(case, onnx_fp32, splits):
    cfg, precision, min_cos = CASES[case]
    src, ctx = onnx_fp32
    cfg = cfg.model_copy(update={"artifact": f"q-{case}"})
    art, rec = get_pass(cfg).apply(src, ctx)
    assert art.artifact.precision == precision and art.artifact.source == "onnx-fp32" and rec.status == "ok"
    out = get_runtime("onnxruntime").load(art.path).run(splits.x_test)
    n = compare(ctx.reference_logits["test"], out)
    assert n["cosine"] >= min_cos, n
    assert n["top1_agreement"] >= 0.9, n
    if precision.startswith("int8"):
        import onnx

        from edgekit.onnx_graph import initializer_bytes

        weights = initializer_bytes(onnx.load(str(art.path)))
        int8 = weights.get("int8", 0) + weights.get("uint8", 0)
        assert int8 > weights.get("float32", 0), weights  # the weights really are int8 now
        ops = art.artifact.ops
        assert any(op in ops for op in ("QuantizeLinear", "QLinearConv", "ConvInteger", "DynamicQuantizeLinear"))


def test_auto_static_measures_candidates_and_explains_choice(onnx_fp32):
    src, ctx = onnx_fp32
    cfg = StaticQuantConfig(name="quantize.static", artifact="auto-int8", select_time_s=0.05)
    art, rec = get_pass(cfg).apply(src, ctx)
    assert len(rec.candidates) == 6 and sum(c["chosen"] for c in rec.candidates) == 1
    assert all(c["latency_ms_p50"] > 0 for c in rec.candidates)
    assert "chose" in rec.decision and "fp32" in rec.decision
    chosen = next(c for c in rec.candidates if c["chosen"])
    details = art.artifact.details
    assert details["format"] == chosen["format"] and details["per_channel"] == chosen["per_channel"]


def test_dynamic_on_conv_only_model_notes_nothing_quantized(onnx_fp32):
    src, ctx = onnx_fp32
    art, rec = get_pass(DynamicQuantConfig(name="quantize.dynamic", artifact="dyn-default", op_types=["LSTM"])).apply(
        src, ctx)
    assert any("no layer" in n for n in rec.notes)


def test_static_records_saturation_safe_weights_and_bias_correction(onnx_fp32):
    src, ctx = onnx_fp32
    cfg = StaticQuantConfig(name="quantize.static", artifact="q-fixes", format="qdq", activation_type="uint8",
                            per_channel=True, saturation_safe=True, bias_correction=True)
    art, rec = get_pass(cfg).apply(src, ctx)
    assert art.artifact.details["saturation_safe"] and art.artifact.details["bias_correction"]
    row = rec.candidates[0]
    assert "layers_rescaled" in row["saturation_safe"] and row["bias_correction"]["layers_corrected"] >= 1
    assert "Bias correction of" in rec.decision
    off = cfg.model_copy(update={"artifact": "q-nofix", "saturation_safe": False, "bias_correction": False})
    art, rec = get_pass(off).apply(src, ctx)
    assert not art.artifact.details["saturation_safe"] and not art.artifact.details["bias_correction"]
    assert "saturation_safe" not in rec.candidates[0] and "bias_correction" not in rec.candidates[0]


def test_static_quantizes_a_fixed_batch_model(cnn, splits, tmp_path):
    """User ONNX files often fix the batch at 1: calibration and bias correction feed whole batches of that size."""
    (tmp_path / "artifacts").mkdir()
    art = OnnxExporter().export(cnn, splits.x_test, OnnxExport(format="onnx", exporter="legacy", dynamic_batch=False),
                                tmp_path / "artifacts" / "fixed.onnx", tmp_path, "fixed")
    assert art.inputs[0].shape[0] == 1
    cfg = StaticQuantConfig(name="quantize.static", artifact="fixed-int8", format="qdq", activation_type="uint8",
                            per_channel=True, bias_correction=True)
    q = apply_pass(tmp_path / "artifacts" / "fixed.onnx", cfg, splits, work_dir=tmp_path, reference=cnn).output
    out = get_runtime("onnxruntime").load(q.path).run(splits.x_test)
    assert compare(predict(cnn, splits.x_test), out)["cosine"] > 0.98 and q.artifact.details["bias_correction"]


def test_fallback_keeps_sensitive_layers_in_float_until_bounds_hold(onnx_fp32):
    from edgekit.passes.ort_quantize import FallbackConfig

    src, ctx = onnx_fp32
    base = dict(name="quantize.static", format="qdq", activation_type="int8", per_channel=False,
                saturation_safe=False, bias_correction=False)
    # unreachable bounds: every step is tried and reported, the most faithful is kept, and the pass says so
    cfg = StaticQuantConfig(**base, artifact="q-fb", fallback=FallbackConfig(max_layers=2, min_cosine=1.0))
    art, rec = get_pass(cfg).apply(src, ctx)
    steps = [r for r in rec.candidates if "float_nodes" in r]
    assert [len(r["float_nodes"]) for r in steps] == [1, 2] and all(r["latency_ms_p50"] > 0 for r in steps)
    assert "No fallback met the bounds" in rec.decision
    assert steps[1]["cosine"] >= steps[0]["cosine"] - 0.01 or art.artifact.details["float_nodes"]
    # bounds the all-int8 model already meets: nothing is kept in float
    easy = cfg.model_copy(update={"artifact": "q-fb-easy", "fallback": FallbackConfig(min_cosine=0.5)})
    art, rec = get_pass(easy).apply(src, ctx)
    assert art.artifact.details["float_nodes"] == [] and "not needed" in rec.decision


def test_excluded_layers_stay_float_inside_onnxruntime(onnx_fp32, tmp_path):
    """ORT's WeightBiasQuantization re-quantizes (per-tensor) the float weights of a Conv fed by a
    DequantizeLinear at session load; edgekit's rewrite keeps an excluded layer really float."""
    import onnx
    import onnxruntime as ort

    from edgekit.passes.ort_quantize import StaticQuantize, preprocess
    from edgekit.quant.onnx_rewrite import qdq_layers

    src, ctx = onnx_fp32
    pre, _ = preprocess(src.path, tmp_path / "pre.onnx")
    q = StaticQuantize(StaticQuantConfig(name="quantize.static", format="qdq", activation_type="uint8",
                                         per_channel=True, saturation_safe=False, bias_correction=False))
    q.build(pre, tmp_path / "all.onnx", "qdq", "uint8", True, ctx)
    second = [la.node for la in qdq_layers(onnx.load(str(tmp_path / "all.onnx")).graph)][1]  # reads a DQ'd input
    q.build(pre, tmp_path / "mixed.onnx", "qdq", "uint8", True, ctx, float_nodes=[second])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(tmp_path / "loaded.onnx")
    ort.InferenceSession(str(tmp_path / "mixed.onnx"), so, providers=["CPUExecutionProvider"])
    loaded = onnx.load(str(tmp_path / "loaded.onnx")).graph
    node = next(n for n in loaded.node if n.name == second)
    w = next(i for i in loaded.initializer if i.name == node.input[1])  # not the output of a DequantizeLinear
    assert w.data_type == onnx.TensorProto.FLOAT


def test_measured_ranking_keeps_float_the_layer_that_helps_most_alone(onnx_fp32):
    from edgekit.passes.ort_quantize import FallbackConfig

    src, ctx = onnx_fp32
    base = dict(name="quantize.static", format="qdq", activation_type="int8", per_channel=False,
                saturation_safe=False, bias_correction=False)
    fb = FallbackConfig(max_layers=1, min_cosine=1.0, ranking="measured", probe=2)
    art, rec = get_pass(StaticQuantConfig(**base, artifact="q-measured", fallback=fb)).apply(src, ctx)
    step = next(r for r in rec.candidates if "float_nodes" in r)
    probes = step["ranking"]
    assert 2 <= len(probes) <= 4 and len({p["node"] for p in probes}) == len(probes)
    assert [p["cosine"] for p in probes] == sorted((p["cosine"] for p in probes), reverse=True)
    # the step keeps float the layer whose probe measured best, and measures what its probe measured
    assert step["float_nodes"] == [probes[0]["node"]]
    assert step["cosine"] == pytest.approx(probes[0]["cosine"], abs=1e-6)
    assert "ranked by measurement" in rec.decision
    err = fb.model_copy(update={"ranking": "error"})
    _, rec = get_pass(StaticQuantConfig(**base, artifact="q-error", fallback=err)).apply(src, ctx)
    assert all("ranking" not in r for r in rec.candidates)


def test_sensitivity_ranking_names_quantized_layers(onnx_fp32, tmp_path):
    from edgekit.quant.onnx_rewrite import sensitivity_ranking
    from edgekit.quant.ort_build import make_reader_for, preprocess

    src, ctx = onnx_fp32
    from onnxruntime import quantization as q

    pre, _ = preprocess(src.path, tmp_path / "pre.onnx")
    q.quantize_static(str(pre), str(tmp_path / "q.onnx"), make_reader_for(pre, ctx.splits.x_calib),
                      quant_format=q.QuantFormat.QDQ, per_channel=False)
    ranked = sensitivity_ranking(tmp_path / "q.onnx", pre, ctx.splits.x_val[:16])
    assert len(ranked) >= 2 and all(isinstance(n, str) and np_isfinite(e) for n, e in ranked)
    assert ranked == sorted(ranked, key=lambda r: -r[1])
    assert max(e for _, e in ranked) < 0.5  # compared after the activation ORT folded into the output's range


def np_isfinite(v) -> bool:
    import math

    return math.isfinite(v)


def test_relative_run_folder_is_pre_processed(tmp_path):
    """ORT's pre-processing runs for a relative --out (it once resolved the path after changing directory, failed
    silently, and ORT asked a dozen times to 'consider pre-processing'); the artifact records that it ran."""
    import json
    import subprocess
    import sys

    from helpers import write_recipe

    write_recipe(tmp_path / "r.yaml", bench=None, gates={}, train={"epochs": 1, "batch_size": 64, "progress": False},
                 passes=[{"name": "quantize.static"}, {"name": "quantize.dynamic", "artifact": "onnx-dyn"}])
    p = subprocess.run([sys.executable, "-m", "edgekit", "run", "r.yaml", "--out", "runs/x"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "consider pre-processing" not in out and "pre-processing" not in out
    report = json.loads((tmp_path / "runs" / "x" / "report.json").read_text())
    quantized = [a for a in report["artifacts"] if a["name"] in ("onnx-int8", "onnx-dyn")]
    assert len(quantized) == 2 and all(a["details"]["preprocessed"] is True for a in quantized)
    assert not any("pre-processing" in n for rec in report["passes"] for n in rec["notes"])


def test_a_failing_pre_processing_is_named_not_swallowed(tmp_path):
    from edgekit.passes.ort_quantize import preprocess, preprocess_note

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    logged = []
    path, reason = preprocess(bad, tmp_path / "pre.onnx", logged.append)
    assert path == bad.resolve() and reason
    assert len(logged) == 1 and "pre-processing" in logged[0] and reason in logged[0]
    assert reason in preprocess_note(reason)[0] and preprocess_note(None) == []
