"""Read and write report.json (atomically, once per stage, so a killed run keeps what it finished)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from edgekit.atomic import atomic_write_text
from edgekit.errors import GateInputError
from edgekit.limits import read_json
from edgekit.report.schema import SCHEMA, Report


def save_report(report: Report, run_dir: Path) -> Path:
    path = Path(run_dir) / "report.json"
    atomic_write_text(path, report.to_json() + "\n")
    return path


def load_report(path: Path) -> Report:
    """Load report.json (or a run folder holding one) with a clear error when it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise GateInputError(f"{path}: report not found")
    data = read_json(path, GateInputError)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise GateInputError(f"{path}: not an edgekit report (schema {found!r}, expected {SCHEMA!r})")
    try:
        return Report.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise GateInputError(f"{path}: malformed report at {'.'.join(map(str, first['loc']))}: {first['msg']}") from e


def report_dir(path: Path) -> Path:
    """The run folder a report belongs to (evidence paths in the report are relative to it)."""
    path = Path(path)
    return path if path.is_dir() else path.parent
