"""Measurement: cross-runtime parity, the bench on every device, and the gates."""

from __future__ import annotations

from typing import Any

from edgekit.console import progress
from edgekit.errors import EdgekitError
from edgekit.report.schema import Artifact
from edgekit.stages.state import MEASURABLE, PARITY_THREADS, Run


def cross_parity_pairs(artifacts: list[Artifact]) -> list[tuple[str | None, str, str]]:
    """(a, b, relation) pairs that should agree; a None `a` is the fp32 reference."""
    ok = [a for a in artifacts if a.status in MEASURABLE]
    fp32 = [a for a in ok if a.precision == "fp32"]
    pairs: list[tuple[str | None, str, str]] = [(None, a.name, "reference vs fp32") for a in fp32]
    pairs += [(a.name, b.name, "fp32 across formats") for i, a in enumerate(fp32) for b in fp32[i + 1:]
              if a.format != b.format]
    for q in (a for a in ok if a.precision != "fp32"):
        src = next((a for a in fp32 if a.name == q.source), None) or next((a for a in fp32 if a.format == q.format), None)
        if src is not None:
            pairs.append((src.name, q.name, "quantized vs its fp32"))
    return pairs


def stage_cross_parity(run: Run, samples: int = 256) -> None:
    """Agreement between artifacts that should match, each run in its own runtime on the same held-out inputs."""
    from edgekit.export.artifact import artifact_path
    from edgekit.export.parity import compare
    from edgekit.runtimes import runtime_for

    x = run.splits.x_test[:samples]
    if not len(x) or not run.reference_logits:
        return
    outputs: dict[str | None, Any] = {None: run.reference_logits["test"][: len(x)]}
    by_name = {a.name: a for a in run.report.artifacts}
    rows = []
    for a, b, relation in cross_parity_pairs(run.report.artifacts):
        row = {"a": a or run.reference_name(), "b": b, "relation": relation}
        try:
            for n in (a, b):
                if n is not None and n not in outputs:
                    art = by_name[n]
                    sess = runtime_for(art.format).load(artifact_path(run.run_dir, art), threads=PARITY_THREADS)
                    outputs[n] = sess.run(x)
            row.update(compare(outputs[a], outputs[b]))
        except EdgekitError as e:
            row["error"] = str(e)
        rows.append(row)
    run.report.cross_parity = rows
    run.save("cross_parity")


def stage_bench(run: Run, devices: list[str] | None = None) -> None:
    """Every ok artifact on every device. A device that cannot be reached (or drops mid-run) gets `skipped` rows
    naming the reason; results already measured are saved as they come and the other devices still run."""
    from edgekit.bench.cross_isa import add_cross_isa

    cfg = run.recipe.bench
    if cfg is None:
        return
    outputs: dict = {}

    def record(row) -> None:
        run.report.results = [r for r in run.report.results if (r.artifact, r.device) != (row.artifact, row.device)]
        run.report.results.append(row)
        run.save()

    names = devices or cfg.devices
    arts = [a for a in run.report.artifacts if a.status in MEASURABLE]
    with progress("bench", len(names) * len(arts), log=run.log) as bar:
        for dev in names:
            _bench_device(run, dev, arts, cfg, record, bar, outputs)
    add_cross_isa(run.report.results, outputs)
    run.save("bench")


def _bench_device(run: Run, dev: str, arts: list[Artifact], cfg, record, bar, outputs: dict) -> None:
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import load_profile, reachable, transport_entry
    from edgekit.report.schema import Result
    from edgekit.stages.model import reference_outputs

    try:
        profile = load_profile(dev)
    except EdgekitError as e:
        run.fail(f"device {dev}", e)
        bar.update(bar.done + len(arts))
        return
    why = reachable(profile) if arts else None
    if why:
        run.fail(f"device {profile.name}", EdgekitError(f"unreachable, its benches are skipped: {why}"))
    for i, art in enumerate(arts):
        if why:
            run.log(f"bench: {art.name} on {profile.name} skipped: device unreachable: {why}")
            record(Result(artifact=art.name, device=profile.name, runtime="?", status="skipped",
                          error=f"device unreachable: {why}", size_bytes=art.size_bytes))
            bar.update(note=f"{art.name}@{profile.name} skipped")
            continue
        prev_row = _reusable_result(run, art.name, profile.name)
        if prev_row is not None:
            run.log(f"bench: {art.name} on {profile.name} reused from the interrupted run")
            record(prev_row)
            bar.update(note=f"{art.name}@{profile.name} reused")
            continue
        run.log(f"bench: {art.name} on {profile.name}")
        row = bench_artifact(art, run.run_dir, run.splits.x_test, run.splits.y_test if run.splits.labelled else None,
                             profile, cfg, keep_samples_dir=run.run_dir / "samples", reference=reference_outputs(run),
                             outputs_into=outputs)
        record(row)
        bar.update(note=f"{art.name}@{profile.name}")
        if row.status == "ok":
            run.log(f"  {_result_line(row)}")
        elif row.status == "skipped":  # the profile lists no runtime for this format: its choice, not a failure
            run.log(f"  skipped: {row.error}")
        else:
            run.fail(f"bench {art.name}@{profile.name}", EdgekitError(row.error or row.status))
            if row.status == "failed" and transport_entry(profile).remote and i + 1 < len(arts):
                why = reachable(profile)  # a device that dropped: skip the rest rather than time out on each


def _result_line(row) -> str:
    acc = f"acc {row.accuracy:.4f} " if row.accuracy is not None else ""
    if row.metrics and row.metrics.get("cosine") is not None:
        acc += f"cosine {row.metrics['cosine']:.5f} "
    lat = row.latency_ms
    timing = (f"p50 {lat.p50:.3f} ms p90 {lat.p90:.3f} ms ({lat.samples} runs" if lat is not None else
              f"avg {row.latency_summary['avg']:.3f} ms ({int(row.latency_summary['count'])} runs")
    energy = f", {row.energy_mj:.3f} mJ/inference" if row.energy_mj is not None else ""
    return f"{acc}{timing}, {row.threads} threads{energy})"


def _reusable_result(run: Run, artifact: str, device: str):
    """A finished bench row of the interrupted run, for an artifact that was reused, with intact evidence."""
    from edgekit.export.artifact import file_sha256
    from edgekit.names import contained

    if run.previous is None or artifact not in run.reused:
        return None
    row = next((r for r in run.previous.results if (r.artifact, r.device) == (artifact, device) and r.status == "ok"),
               None)
    if row is None or not row.samples:
        return row
    try:
        path = contained(run.run_dir, row.samples, what=f"results[{artifact}@{device}].samples")
    except EdgekitError:
        return None
    return row if path.is_file() and file_sha256(path) == row.samples_sha256 else None


def stage_gates(run: Run) -> bool:
    from edgekit.report.gates import evaluate_gates, gates_passed

    run.report.gates = evaluate_gates(run.report, run.recipe.gates, run_dir=run.run_dir)
    run.save("gates")
    return gates_passed(run.report.gates)
