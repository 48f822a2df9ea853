"""Cross-architecture parity: the same file's outputs on another CPU architecture (an arm64 board, emulated or real)
against its outputs on this host. int8 rounding and kernel choices differ between ISAs; this measures by how much."""

from __future__ import annotations

import platform

import numpy as np

from edgekit.bench.metrics import as_rows, cosine
from edgekit.report.schema import Result


def host_row(results: list[Result], outputs: dict, artifact: str, runtime: str | None = None) -> Result | None:
    """The artifact's ok row measured on this host's architecture, not emulated, whose outputs are at hand; one run
    by `runtime` first (the same file on the same runtime, e.g. OpenVINO on both ISAs)."""
    here = platform.machine()
    rows = [r for r in results if r.artifact == artifact and r.status == "ok" and not r.emulated
            and r.machine == here and (r.artifact, r.device) in outputs]
    return next((r for r in rows if r.runtime == runtime), rows[0] if rows else None)


def vs_host_metrics(host: np.ndarray, other: np.ndarray) -> dict[str, float]:
    a, b = as_rows(host).astype(np.float64), as_rows(other).astype(np.float64)
    flips = int((a.argmax(1) != b.argmax(1)).sum()) if a.shape[1] > 1 else 0
    diff = np.abs(a - b)
    return {"vs_host_max_abs": float(diff.max()) if diff.size else 0.0,
            "vs_host_mean_abs": float(diff.mean()) if diff.size else 0.0,
            "vs_host_cosine": cosine(a, b), "vs_host_top1_flips": float(flips)}


def add_cross_isa(results: list[Result], outputs: dict) -> None:
    """vs_host_* metrics on every ok row from another architecture (or an emulated device) whose artifact was also
    measured on this host; `outputs` maps (artifact, device) to the outputs of that bench."""
    for r in results:
        if r.status != "ok" or (r.artifact, r.device) not in outputs:
            continue
        if not r.emulated and (r.machine is None or r.machine == platform.machine()):
            continue
        host = host_row(results, outputs, r.artifact, r.runtime)
        if host is None:
            continue
        got = outputs[(r.artifact, r.device)]
        ref = outputs[(host.artifact, host.device)]
        if got.shape != ref.shape:
            continue
        r.metrics = {**(r.metrics or {}), **vs_host_metrics(ref, got)}
        r.vs_host = f"{host.artifact}@{host.device} ({host.machine})"
