"""The summary a command prints at the end: results and gates as tables that fit the terminal, then the verdict
and where the full reports are. Plain text (no control codes) when stdout is not a terminal."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path
from typing import TextIO

from edgekit.report.gates import verdict
from edgekit.report.schema import GateResult, Report, Result


def gate_header(name: str) -> str:
    """A gate's column: its name without the max_ prefix (accuracy_drop, latency_p90_ms, budget_size_mb ...)."""
    return name.removeprefix("max_").replace("device_budget_", "budget_")


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _size(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def _quality(r: Result) -> str:
    """Accuracy when labelled, else fidelity to the fp32 reference (cosine)."""
    if r.accuracy is not None:
        return f"{r.accuracy:.4f}"
    cos = (r.metrics or {}).get("cosine")
    return f"cos {cos:.4f}" if cos is not None else "-"


def _plain(s: str):
    """Text from a report (untrusted: it may be a tampered file) shown as is: never read as rich markup, control
    characters escaped."""
    from rich.text import Text

    from edgekit.names import printable

    return Text(printable(s))


def results_table(report: Report):
    """artifact@device rows: size, accuracy (or fidelity), p50/p90, load and first-inference time."""
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, title="results (times in ms)", title_justify="left", pad_edge=False,
              show_edge=False)
    t.add_column("artifact@device", overflow="fold", min_width=12)
    for name in ("size", "accuracy", "p50", "p90", "load", "first inf"):
        t.add_column(name, justify="right", no_wrap=True)
    failed = any(r.status != "ok" for r in report.results)
    if failed:
        t.add_column("status", overflow="fold", min_width=8)
    for r in report.results:
        lat = r.latency_ms
        p50 = lat.p50 if lat else (r.latency_summary or {}).get("median", (r.latency_summary or {}).get("avg"))
        row = [_plain(f"{r.artifact}@{r.device}"), _size(r.size_bytes), _quality(r), _f(p50, ".3f"),
               _f(lat.p90 if lat else None, ".3f"), _f(r.load_ms, ".1f"), _f(r.first_inference_ms, ".2f")]
        status = r.status if r.status == "ok" else f"{r.status}: {r.error or ''}"[:80]
        t.add_row(*row, *([_plain(status)] if failed else []))
    return t


def gate_matrix(gates: list[GateResult]):
    """targets x gates, each cell PASS/FAIL (WARN for warnings); `-` where a gate does not apply."""
    from rich import box
    from rich.table import Table

    names = list(dict.fromkeys(g.name for g in gates))
    targets = list(dict.fromkeys(g.target for g in gates))
    cells = {(g.target, g.name): verdict(g) for g in gates}
    t = Table(box=box.SIMPLE_HEAD, title="gates", title_justify="left", pad_edge=False, show_edge=False)
    t.add_column("target", overflow="fold", min_width=12)
    for n in names:
        t.add_column(_plain(gate_header(n)), justify="center")
    for target in targets:
        row = [cells.get((target, n), "-") for n in names]
        t.add_row(_plain(target), *[f"[red]{c}[/]" if c == "FAIL" else f"[yellow]{c}[/]" if c == "WARN" else c for c in row])
    return t


def verdict_line(report: Report) -> str:
    """PASS/FAIL with the counts behind it."""
    hard = [g for g in report.gates if g.severity == "error"]
    failed = [g for g in hard if not g.passed]
    warned = [g for g in report.gates if g.severity == "warning" and not g.passed]
    parts = [f"{len(hard) - len(failed)}/{len(hard)} gates passed" if hard else "no gates"]
    if warned:
        parts.append(f"{len(warned)} warning{'s' if len(warned) > 1 else ''}")
    if report.errors:
        parts.append(f"{len(report.errors)} stage{'s' if len(report.errors) > 1 else ''} failed")
    return f"{'FAIL' if failed or report.errors else 'PASS'}: {', '.join(parts)}"


def _failure_lines(report: Report) -> list[str]:
    from edgekit.names import printable

    lines = [f"  {printable(g.name)} {printable(g.target)}: {printable(g.detail or f'{g.value} vs {g.threshold}')}"
             for g in report.gates if not g.passed and g.severity == "error"]
    lines += [f"  {printable(e)}" for e in report.errors]
    return lines


def print_summary(report: Report, run_dir: Path | None = None, file: TextIO | None = None,
                  width: int | None = None) -> None:
    """The results table, the gate matrix, what failed, the verdict and the report paths."""
    from rich.console import Console

    file = file or sys.stdout
    width = width or shutil.get_terminal_size((120, 24)).columns
    try:
        tty = file.isatty()
    except (AttributeError, ValueError):
        tty = False
    con = Console(file=io.StringIO(), width=width, force_terminal=tty, color_system="auto" if tty else None,
                  highlight=False, emoji=False, soft_wrap=False)
    if report.results:
        con.print(results_table(report))
        con.print()
    if report.gates:
        con.print(gate_matrix(report.gates))
        con.print()
    for line in _failure_lines(report):
        con.print(line, markup=False, soft_wrap=True)
    ok = not report.errors and all(g.passed for g in report.gates if g.severity == "error")
    con.print(verdict_line(report), style="bold green" if ok else "bold red", markup=False)
    if run_dir is not None:
        run_dir = Path(run_dir)
        paths = [run_dir / n for n in ("report.html", "report.md") if (run_dir / n).is_file()]
        for i, path in enumerate(paths):
            con.print(f"{'report:' if i == 0 else '':<8}{path}", markup=False, soft_wrap=True)
    file.write("\n".join(line.rstrip() for line in con.file.getvalue().splitlines()) + "\n")
    file.flush()
