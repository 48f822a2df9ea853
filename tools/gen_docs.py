"""Regenerate the docs that are read from the code: docs/recipe-reference.md (the recipe schema) and tests/README.md
(which tests cover which module). `make docs` runs it. `--check` writes nothing and exits 1 when the recipe reference
is stale (the test map's rows change with every new test import; tests/test_docs_current.py checks that it lists
every module)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import recipe_reference  # noqa: E402
import test_map  # noqa: E402


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    generated = {ROOT / "docs" / "recipe-reference.md": recipe_reference.render}
    if not check:
        generated[ROOT / "tests" / "README.md"] = lambda: test_map.render(ROOT)
    for path, render in generated.items():
        text = render()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(path.relative_to(ROOT)))
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"stale: {', '.join(stale)}: run `make docs` (python tools/gen_docs.py) and commit the result",
              file=sys.stderr)
        return 1
    print(f"{'stale' if check else 'wrote'}: {', '.join(stale) or 'nothing (all current)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
