"""Published BFCL scores of GPT-4-family models, for reference rows beside ours.

Source: Table 1 of Patil et al., "The Berkeley Function Calling Leaderboard (BFCL):
From Tool Use to Agentic Evaluation of Large Language Models", ICML 2025, PMLR
267:48371-48392, published 2025-07-13 (https://proceedings.mlr.press/v267/patil25a.html),
the leaderboard's table in its V4 iteration (it has V4's web-search and memory
columns). Figures are accuracies in percent, copied from that table; nothing here is
measured by us. The live leaderboard (gorilla.cs.berkeley.edu/leaderboard.html) moves
on; its CSVs were not available to us, so only this dated snapshot is cited.

Column caveats, from BFCL's own aggregation code (eval_runner_helper.py in bfcl-eval):
the table's single-turn "Simple" AST is the unweighted mean of simple_python,
simple_java and simple_javascript, and its "Irrelevance" the mean of irrelevance and
live_irrelevance; Multiple, Parallel, Parallel Multiple and multi-turn Base are the
same categories we run.
"""

from __future__ import annotations

from intentos.eval.suite import Published, PublishedRow

SOURCE = ("BFCL paper Table 1 (Patil et al., ICML 2025, PMLR 267:48371-48392, published 2025-07-13, "
          "https://proceedings.mlr.press/v267/patil25a.html; leaderboard V4 iteration)")
COLUMNS = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "multi_turn_base")
# model → accuracy (%) in the order of COLUMNS: AST Simple, Multiple, Parallel, Parallel Multiple,
# Hallucination Irrelevance, Multi-Turn Base.
ROWS: dict[str, tuple[float, float, float, float, float, float]] = {
    "gpt-4o-2024-11-20 (Prompt)": (79.4, 95.5, 94.0, 83.5, 83.8, 59.0),
    "gpt-4o-2024-11-20 (FC)": (77.2, 93.5, 93.0, 86.0, 83.1, 62.5),
    "GPT-4-turbo-2024-04-09 (FC)": (70.4, 91.0, 90.0, 87.5, 83.8, 54.0),
    "GPT-4-turbo-2024-04-09 (Prompt)": (82.5, 95.5, 93.5, 92.0, 35.6, 42.5),
    "GPT-4o-mini-2024-07-18 (FC)": (74.8, 92.0, 90.0, 84.0, 74.7, 47.5),
    "GPT-4o-mini-2024-07-18 (Prompt)": (80.1, 90.5, 89.5, 87.0, 80.7, 33.0),
}
NOTES = {
    "simple_python": "The published Simple column averages simple_python, simple_java and simple_javascript",
    "irrelevance": "The published Irrelevance column averages irrelevance and live_irrelevance",
}


def published(category: str) -> Published | None:
    """The GPT-4-family rows for one category, or None for a category the table does not report."""
    if category not in COLUMNS:
        return None
    column = COLUMNS.index(category)
    rows = [PublishedRow(model=model, accuracy=values[column] / 100) for model, values in ROWS.items()]
    note = NOTES.get(category)
    return Published(source=SOURCE, rows=rows, note=(note + ".") if note else None)
