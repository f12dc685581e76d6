"""Write intentos/examples_found.json: what grounding finds for each worked example's intent in the example
world (tests/fixtures/example-home.yaml). Run after changing the examples, the fixture or grounding:

    python tests/refresh_example_found.py

tests/test_example_bank.py fails while the file is stale.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intentos.app import Context  # noqa: E402
from intentos.backends.replay import ReplayBackend  # noqa: E402
from intentos.controller import Controller  # noqa: E402
from intentos.examples import EXAMPLES_FILE, FOUND_FILE, load_examples  # noqa: E402
from intentos.fixture import Fixture  # noqa: E402
from intentos.sandbox import Sandbox  # noqa: E402
from intentos.table import FunctionTable  # noqa: E402

HOME = ROOT / "tests" / "fixtures" / "example-home.yaml"


def found_lines(root: Path) -> dict[str, list[str]]:
    """Each example's intent → the grounding lines the planner shows for it in a fresh example world."""
    table = FunctionTable.discover()
    fixture = Fixture.load(HOME)
    ctx = Context(sandbox=Sandbox(root), timezone=fixture.timezone or "UTC", user=fixture.user,
                  fixed_now=fixture.now)
    fixture.apply(ctx, table)
    planner = Controller(ReplayBackend([]), table, ctx, examples=[])
    return {e.intent: [g.line for g in planner.ground(e.intent)] for e in load_examples(EXAMPLES_FILE, None)}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        lines = found_lines(Path(scratch) / "sandbox")
    FOUND_FILE.write_text(json.dumps(lines, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{FOUND_FILE}: {sum(map(len, lines.values()))} lines for {len(lines)} examples")


if __name__ == "__main__":
    main()
