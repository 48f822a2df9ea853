"""report.json, schema v1: append-only records of one run. Extend by adding optional fields only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA = "edgekit.report/v1"

RUN_STATUSES = ("running", "completed", "completed_with_errors", "failed", "interrupted")


class Record(BaseModel):
    """Report records accept no unknown keys, so a reader notices a schema it does not know."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Parity(Record):
    reference: str = Field(description="what the artifact was compared with, e.g. 'torch fp32'")
    samples: int
    max_abs: float
    mean_abs: float
    rel_error: float | None = Field(default=None, description="max |reference - output| / max |reference|")
    cosine: float
    top1_agreement: float
    tolerance: dict[str, float | None] = Field(default_factory=dict)
    passed: bool = True


class TensorSpec(Record):
    name: str
    shape: list[int | str]
    dtype: str


class Artifact(Record):
    name: str
    format: str
    precision: str
    path: str
    size_bytes: int
    sha256: str = ""
    source: str | None = Field(default=None, description="artifact this one was derived from")
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)
    parity: Parity | None = None
    ops: dict[str, int] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    status: str = "ok"
    error: str | None = None


class LatencyStats(Record):
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    iqr: float
    samples: int


class Result(Record):
    artifact: str
    device: str
    runtime: str
    status: str = "ok"
    error: str | None = None
    batch_size: int = 1
    threads: int | None = None
    accuracy: float | None = None
    test_samples: int | None = None
    latency_ms: LatencyStats | None = None
    throughput: float | None = Field(default=None, description="samples per second at batch_size")
    peak_rss_mb: float | None = Field(default=None, description="peak RSS of the bench process at batch_size (before the "
                                                                "accuracy pass)")
    peak_rss_mb_accuracy_pass: float | None = Field(default=None, description="peak RSS after running the test split")
    baseline_rss_mb: float | None = Field(default=None, description="RSS before the model was loaded")
    load_ms: float | None = None
    first_inference_ms: float | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    runtime_version: str | None = None
    runtime_precision: str | None = Field(
        default=None, description="the precision the runtime computed in, where it chooses one (OpenVINO: f32 or bf16)")
    energy_mj: float | None = Field(
        default=None, description="energy per inference (one sample) in mJ from RAPL counters; absent where unreadable")
    latency_summary: dict[str, float] | None = Field(
        default=None, description="a device tool's own latency summary in ms (count, min, max, avg, std, p5/median/p95 when "
                                  "printed), for devices that keep no per-run samples (adb benchmark_model)")
    device_time_ms: LatencyStats | None = Field(default=None, description="accelerator-side time per batch (CUDA events)")
    samples: str | None = Field(default=None, description="npz with per-sample predictions, labels and raw latencies")
    samples_sha256: str | None = None
    metrics: dict[str, float] | None = Field(
        default=None,
        description="quality on the test split: label metrics (accuracy, top_k_accuracy, macro_f1, mse, mae) and "
                    "fidelity to the fp32 reference (cosine, max_abs, mean_abs, top1/top_k_agreement, nn_agreement); "
                    "on another CPU architecture, vs_host_* compare with the same file's outputs on this host")
    machine: str | None = Field(default=None, description="the device's CPU architecture, as its bench agent saw it")
    emulated: bool | None = Field(default=None, description="measured on an emulated device: its outputs count, its timings "
                                                            "mean nothing (no latency gates, no speed-ups)")
    vs_host: str | None = Field(default=None, description="the artifact@device row whose outputs the vs_host_* metrics "
                                                          "compare with")


class PassRecord(Record):
    name: str
    stage: str
    config: dict[str, Any]
    status: str = "ok"
    error: str | None = None
    duration_s: float = 0.0
    produced: str | None = Field(default=None, description="artifact name, for passes that write one")
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    decision: str | None = Field(default=None, description="what was chosen and why")
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class GateResult(Record):
    name: str
    target: str = Field(description="artifact@device the gate looked at, or 'run'")
    value: float | None
    threshold: float
    passed: bool
    detail: str = ""
    severity: str = Field(default="error", description="'warning' gates are shown but never fail the run; 'skipped' gates "
                                                       "could not apply (e.g. latency on an emulated device)")
    confidence: float | None = None
    ci: list[float] | None = Field(default=None, description="confidence interval of the value")
    p_value: float | None = None


class Report(Record):
    schema_: str = Field(default=SCHEMA, alias="schema")
    edgekit_version: str
    recipe_name: str
    created: str
    status: str = Field(default="running",
                        description=f"one of {', '.join(RUN_STATUSES)}: running until the run ends, failed or "
                                    f"interrupted (the reason in `errors`) when it stopped early; a gate fails any "
                                    f"status but completed")
    stages_done: list[str] = Field(default_factory=list)
    recipe: dict[str, Any] = Field(default_factory=dict)
    recipe_sha256: str = ""
    seed: int = 0
    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    reference: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] | None = None
    passes: list[PassRecord] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    results: list[Result] = Field(default_factory=list)
    gates: list[GateResult] = Field(default_factory=list)
    cross_parity: list[dict[str, Any]] = Field(
        default_factory=list, description="agreement between artifact pairs (a, b, relation, max_abs, cosine, top1)")
    profiles: list[dict[str, Any]] = Field(
        default_factory=list, description="per-layer profiles (`edgekit profile`): times, costs, roofline, flags")
    environment: dict[str, Any] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
