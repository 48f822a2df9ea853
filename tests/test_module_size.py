"""No edgekit module over 400 lines: a longer one is split into modules named for what they hold."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def test_no_module_over_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / "edgekit").rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
