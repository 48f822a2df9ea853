"""Parse the text output of TFLite's `benchmark_model` tool into numbers (milliseconds and MB).

Formats handled (see tests/data/benchmark_model/SOURCES.md for the real outputs the tests use):
- run statistics `count=50 first=.. curr=.. min=.. max=.. avg=.. std=..` (microseconds; newer builds append
  `p5=.. median=.. p95=..`; one run prints `count=1 curr=..`), first the warm-up line, then the regular one;
- `Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference (avg): ..`;
- memory: `Peak memory footprint (MB): init=.. overall=..` (older), `Memory footprint delta from the start of
  the tool (MB): init=.. overall=..` and `Overall peak memory footprint (MB) via periodic monitoring: ..`;
- delegation: `Replacing N out of M node(s) with delegate (X) node, yielding K partitions`;
- `--enable_op_profiling` tables: the "Run Order" table of "Operator-wise Profiling Info for Regular Benchmark
  Runs" (node type, start, first, avg ms, %, cdf%, mem KB, times called, name) and "Summary by node type".
Lines may carry a log prefix (`INFO: `, logcat's `I tflite  : `); values may be in scientific notation.
"""

from __future__ import annotations

import re

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_TIMINGS = re.compile(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
                      rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})")
_STAT = re.compile(rf"(?:^|[\s:])count=(\d+)((?:\s+\w+={_NUM})*)")
_KV = re.compile(rf"(\w+)=({_NUM})")
_PEAK_OLD = re.compile(rf"Peak memory footprint \(MB\): init=({_NUM}) overall=({_NUM})")
_DELTA = re.compile(rf"Memory footprint delta from the start of the tool \(MB\): init=({_NUM}) overall=({_NUM})")
_PERIODIC = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\) node, yielding (\d+) partition")
_INIT_SESSION = re.compile(rf"Initialized session in ({_NUM})\s*ms")
_REGULAR_OPS = "Operator-wise Profiling Info for Regular Benchmark Runs"
_ERROR_HINTS = ("Benchmarking failed", "Failed to apply", "failed to prepare", "ERROR:", "Error:")


def _stat(line: str) -> dict | None:
    if "Timings (microseconds)" in line or "Memory (bytes)" in line:
        return None
    m = _STAT.search(line)
    if not m:
        return None
    values = {k: float(v) for k, v in _KV.findall(m.group(0))}
    values["count"] = int(values.get("count", m.group(1)))
    ms = {k: (v / 1000.0 if k != "count" else v) for k, v in values.items()}
    if "first" not in ms and "curr" in ms:  # "count=1 curr=..." (all runs took the same time)
        for k in ("first", "min", "max", "avg"):
            ms[k] = ms["curr"]
        ms["std"] = 0.0
    return ms


def _op_rows(lines: list[str], start: int) -> list[dict]:
    """Rows of the first table after `start` whose header has [node type] ... [Name]."""
    rows, in_table = [], False
    for line in lines[start:]:
        if "[node type]" in line and "[Name]" in line:
            in_table = True
            continue
        if not in_table:
            continue
        if not line.strip() or line.startswith("="):
            break
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if len(cells) < 8:
            break
        name = cells[-1]
        index = None
        m = re.search(r":(\d+)$", name)
        if m:
            index, name = int(m.group(1)), name[: m.start()]
        calls = int(float(cells[7])) if len(cells) >= 9 else 1
        rows.append({"type": cells[0], "start_ms": float(cells[1]), "first_ms": float(cells[2]),
                     "avg_ms": float(cells[3]), "percent": float(cells[4].rstrip("%")),
                     "mem_kb": float(cells[6]), "calls": calls, "name": name.strip("[]"), "index": index})
    return rows


def parse(text: str) -> dict:
    """Everything recognized in one benchmark_model output; keys are absent when the output lacks them."""
    lines = text.replace("\r", "").splitlines()
    out: dict = {}
    stats: list[dict] = []
    op_start = None
    errors = []
    for i, line in enumerate(lines):
        if _REGULAR_OPS in line:
            op_start = i
            continue
        if op_start is not None:
            continue  # op tables carry their own Timings lines; run statistics come before them
        if (st := _stat(line)) is not None:
            stats.append(st)
        elif m := _TIMINGS.search(line):
            init, first, warm, inf = (float(v) / 1000.0 for v in m.groups())
            out.update(init_ms=init, first_inference_ms=first, warmup_avg_ms=warm, inference_avg_ms=inf)
        elif m := _PEAK_OLD.search(line):
            out.setdefault("memory", {}).update(footprint_init_mb=float(m.group(1)), footprint_overall_mb=float(m.group(2)))
        elif m := _DELTA.search(line):
            out.setdefault("memory", {}).update(delta_init_mb=float(m.group(1)), delta_overall_mb=float(m.group(2)))
        elif m := _PERIODIC.search(line):
            out.setdefault("memory", {})["peak_mb"] = float(m.group(1))
        elif m := _REPLACING.search(line):
            out.setdefault("delegation", []).append(
                {"delegated_nodes": int(m.group(1)), "total_nodes": int(m.group(2)), "delegate": m.group(3),
                 "partitions": int(m.group(4))})
        elif m := _INIT_SESSION.search(line):
            out["session_init_ms"] = float(m.group(1))
        elif any(h in line for h in _ERROR_HINTS):
            errors.append(line.strip())
    if stats:
        out["regular"] = stats[-1]
        if len(stats) > 1:
            out["warmup"] = stats[-2]
    if op_start is not None:
        out["ops"] = _op_rows(lines, op_start)
    if errors:
        out["errors"] = errors
    out["failed"] = "Benchmarking failed" in text or ("regular" not in out and "inference_avg_ms" not in out
                                                      and "ops" not in out)
    return out


def latency_summary(parsed: dict) -> dict | None:
    """The regular runs' statistics in ms, as the tool reports them (it keeps no per-run samples)."""
    reg = parsed.get("regular")
    if not reg:
        return None
    keys = ("count", "first", "min", "max", "avg", "std", "p5", "median", "p95")
    return {k: reg[k] for k in keys if k in reg}
