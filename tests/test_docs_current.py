"""The generated docs match the code: docs/recipe-reference.md (the recipe schema) and tests/README.md (the test map)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_docs_are_current():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.strip() or proc.stdout


def test_test_map_lists_every_module():
    import re

    listed = set(re.findall(r"^\| `(edgekit/\S+\.py)` \|", (ROOT / "tests" / "README.md").read_text(encoding="utf-8"),
                            re.MULTILINE))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "edgekit").rglob("*.py")}
    assert listed == modules, (f"tests/README.md is stale (missing {sorted(modules - listed)}, gone "
                               f"{sorted(listed - modules)}): run `make docs`")


def test_recipe_reference_covers_every_registered_name():
    from edgekit.export import EXPORTERS
    from edgekit.passes import PASSES

    text = (ROOT / "docs" / "recipe-reference.md").read_text(encoding="utf-8")
    missing = [f"passes: {n}" for n in PASSES if f"### passes: {n}\n" not in text]
    missing += [f"export: {f}" for f in EXPORTERS if f"### export: {f}\n" not in text]
    assert not missing, f"docs/recipe-reference.md lacks {missing}: run `make docs`"
