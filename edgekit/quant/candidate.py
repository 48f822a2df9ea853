"""One int8 candidate of the ONNX quantize passes: its scheme, its file, what it measured and what was applied to it.

A `Candidate` renders to its report row (`passes[].candidates[]` in report.json) with `row()`; the row keys are the
ones reports have always shown, so old and new reports read the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(eq=False)  # compared by identity: the chosen one is one object
class Candidate:
    format: str | None = None  # qdq or qoperator
    activation_type: str | None = None
    weight_type: str | None = None
    per_channel: bool | None = None
    scheme: str | None = None  # quantize.auto: the scheme's label
    stage: str | None = None  # quantize.auto: ladder, finetune or fallback
    settings: dict[str, Any] | None = None  # quantize.auto: the scheme's settings
    path: Path | None = None  # its quantized file (None: it failed or was skipped)
    source: Path | None = None  # the pre-processed fp32 file it was quantized from
    fidelity: dict[str, float] = field(default_factory=dict)  # vs fp32 on the validation split (and val_accuracy)
    per_sample: dict[str, Any] | None = None  # per-sample cosine/agree(/correct), for paired tests
    size_bytes: int | None = None
    latency: dict[str, float] = field(default_factory=dict)  # ms: p50 (and p90, p99, iqr when timed side by side)
    speedup_vs_fp32: float | None = None
    misses: list[str] | None = None  # the target's bounds it breaks (quantize.auto)
    meets_target: bool | None = None
    graph: tuple | None = None  # what decides its speed (`graph_signature`): equal graphs, equal speed
    saturation_safe: dict | None = None  # the saturation-safe weight rewrite's stats, when applied
    bias_correction: dict | None = None  # its effect, and whether it was kept
    adaround: dict | None = None
    float_nodes: list[str] = field(default_factory=list)  # layers kept in float (mixed precision)
    ranking: list[dict] | None = None  # mixed precision's measured probes
    finetune: dict | None = None  # label-free fine-tuning before quantization
    preprocess_error: str | None = None
    tied_with_most_faithful: bool | None = None
    error: str | None = None
    skipped: str | None = None

    @property
    def built(self) -> bool:
        return self.path is not None and self.error is None

    @property
    def file(self) -> Path:
        """Its quantized file (a built candidate's)."""
        if self.path is None:
            raise ValueError(f"candidate {self.scheme or self.format}: no file ({self.error or self.skipped})")
        return self.path

    @property
    def cosine(self) -> float:
        return self.fidelity["cosine"]

    @property
    def top1_agreement(self) -> float:
        return self.fidelity["top1_agreement"]

    @property
    def latency_ms_p50(self) -> float | None:
        return self.latency.get("p50")

    def measured(self, path: Path, fidelity: dict[str, float], per_sample: dict[str, Any] | None) -> None:
        """Take a rewritten file and its measured fidelity as this candidate's own."""
        self.path, self.fidelity, self.per_sample = Path(path), dict(fidelity), per_sample

    def row(self, chosen: bool | None = None) -> dict[str, Any]:
        """The report row: only what this candidate has (a failed one: its settings and error)."""
        head: dict[str, Any] = {"scheme": self.scheme, "stage": self.stage, "settings": self.settings,
                                "format": self.format, "activation_type": self.activation_type,
                                "weight_type": self.weight_type, "per_channel": self.per_channel}
        out = {k: v for k, v in head.items() if v is not None}
        if self.saturation_safe:
            out["saturation_safe"] = self.saturation_safe
        if self.float_nodes:
            out["float_nodes"] = list(self.float_nodes)
        out.update(self.fidelity)
        tail = {"size_bytes": self.size_bytes, "adaround": self.adaround, "bias_correction": self.bias_correction,
                "ranking": self.ranking, "finetune": self.finetune, "preprocess_error": self.preprocess_error,
                "misses": self.misses, **{f"latency_ms_{k}": v for k, v in self.latency.items()},
                "speedup_vs_fp32": self.speedup_vs_fp32, "meets_target": self.meets_target,
                "tied_with_most_faithful": self.tied_with_most_faithful, "error": self.error, "skipped": self.skipped}
        out.update({k: v for k, v in tail.items() if v is not None})
        if chosen is not None:
            out["chosen"] = chosen
        return out


def failed(head: Candidate, e: Exception) -> Candidate:
    """`head` (its settings) marked failed with `e`: one failing candidate must not lose the others."""
    head.path, head.error = None, f"{type(e).__name__}: {e}"
    return head


def rows(candidates: list[Candidate], chosen: Candidate | None) -> list[dict[str, Any]]:
    """The report rows of `candidates`, the chosen one marked."""
    return [c.row(chosen=c is chosen) for c in candidates]
