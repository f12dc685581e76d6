"""The eval report: `report.md` and `report.html` with the same tables, plus two plots.

Any number of recorded runs of one suite can sit side by side (a GPT-4 run recorded on a
machine with a key next to local runs); a suite's published figures appear as labelled
reference rows, never mixed up with figures measured here.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

from intentos.eval.record import REFERENCE_SPEC, Manifest, Trial
from intentos.eval.scores import DIFFICULTIES, ModelScore, case_rows, score
from intentos.eval.suite import Published

Table = tuple[list[str], list[list[str]]]  # header, rows (cells already formatted)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary_table(scores: Sequence[ModelScore], published: Published | None) -> Table:
    header = ["model", "goal pass", "valid", "executes", "pass@1", "pass@k", "repairs", "latency p50",
              "latency p90", "tokens in", "tokens out", "trials"]
    rows = [[s.model, pct(s.passed), pct(s.valid), pct(s.executed), pct(s.pass_at_1),
             f"{pct(s.pass_at_k)} (k={s.reps})", f"{s.repairs:.2f}", f"{s.latency_median_s:.2f} s",
             f"{s.latency_p90_s:.2f} s", f"{s.tokens_in:.0f}", f"{s.tokens_out:.0f}",
             f"{s.trials}" + (f" ({s.replay_diverged} diverged in replay)" if s.replay_diverged else "")]
            for s in scores]
    for row in published.rows if published else []:
        rows.append([f"{row.model} (published†)", row.label,
                     *["—"] * (len(header) - 2)])
    return header, rows


def difficulty_table(scores: Sequence[ModelScore]) -> Table:
    levels = [d for d in DIFFICULTIES if any(d in s.by_difficulty for s in scores)]
    return ["model", *levels], [[s.model, *(pct(s.by_difficulty[d]) if d in s.by_difficulty else "—"
                                            for d in levels)] for s in scores]


def case_table(trials: Sequence[Trial], models: list[str]) -> Table:
    rows = []
    for row in case_rows(list(trials)):
        cells = []
        for model in models:
            won, n = row.passed.get(model, (0, 0))
            cells.append("—" if n == 0 else ("✓" if won == n else "✗" if won == 0 else "◐") + f" {won}/{n}")
        rows.append([row.case, row.difficulty, ", ".join(row.tags), *cells])
    return ["case", "difficulty", "tags", *models], rows


def failure_table(trials: Sequence[Trial]) -> Table:
    rows = []
    for t in trials:
        if t.passed:
            continue
        if t.verdict is None:
            why = "no valid workflow: " + (t.resolution_error or "").splitlines()[-1][:160]
        else:
            failed = [c for c in t.verdict.checks if not c.passed]
            why = f"run {t.verdict.status}" + (f" ({t.verdict.error[:100]})" if t.verdict.error else "") + (
                "; " + "; ".join(f"{c.check}: {c.detail}" for c in failed[:2]) if failed else "")
        rows.append([t.model, t.case, str(t.rep), why[:300]])
    return ["model", "case", "rep", "why it failed"], rows


def missing_gpt4(models: list[str], suite_path: str, out: Path) -> str | None:
    if any("gpt-4" in m.lower() for m in models):
        return None
    return ("GPT-4 rows are missing: no `openai:gpt-4…` run is recorded here. On a machine with an OpenAI key, "
            f"`OPENAI_API_KEY=… intentos eval --suite {suite_path} --model openai:gpt-4o --out {out}` adds them "
            "(or record elsewhere and pass that folder with `--compare`).")


# -- plots -------------------------------------------------------------------------------------------


def plot_pass_by_difficulty(scores: Sequence[ModelScore]) -> str:
    """Grouped bars: goal pass rate per model within each difficulty; returns SVG text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [d for d in DIFFICULTIES if any(d in s.by_difficulty for s in scores)] + ["all"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(scores))
    for i, s in enumerate(scores):
        values = [100 * s.by_difficulty.get(d, 0.0) for d in levels[:-1]] + [100 * s.passed]
        ax.bar([x + i * width for x in range(len(levels))], values, width, label=s.model)
    ax.set_xticks([x + width * (len(scores) - 1) / 2 for x in range(len(levels))], levels)
    ax.set_ylabel("goal pass rate (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def plot_latency(trials: Sequence[Trial], models: list[str]) -> str:
    """Box plot of model time per trial (all attempts), per model; returns SVG text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in models if m != REFERENCE_SPEC] or models  # the reference answers without a model
    data = [[t.latency_s for t in trials if t.model == m] for m in models]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(models)))
    ax.boxplot(data, orientation="horizontal", tick_labels=models, showfliers=True)
    ax.set_xlabel("model time per intent, all attempts (s)")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return buffer.getvalue()


# -- writing -----------------------------------------------------------------------------------------


def write_report(out: Path, trials: Sequence[Trial], manifests: Sequence[Manifest],
                 published: Published | None = None) -> tuple[Path, Path]:
    """Write report.md, report.html and the two plots (SVG) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    scores = score(list(trials))
    models = [s.model for s in scores]
    suite = manifests[0].suite if manifests else (trials[0].suite if trials else "?")
    suite_path = manifests[0].suite_path if manifests else "SUITE.yaml"
    settings = manifests[0].settings if manifests else {}
    (out / "pass_by_difficulty.svg").write_text(plot_pass_by_difficulty(scores), encoding="utf-8")
    (out / "latency.svg").write_text(plot_latency(trials, models), encoding="utf-8")

    sections: list[tuple[str, Table | str]] = [
        ("Scores per model", summary_table(scores, published)),
        ("Goal pass rate by difficulty", difficulty_table(scores)),
        ("Per case", case_table(trials, models)),
        ("Why trials failed", failure_table(trials)),
    ]
    facts = [
        f"suite **{suite}** ({suite_path}), {len({t.case for t in trials})} cases",
        "runs: " + "; ".join(f"{', '.join(m.models)} on {m.host}, {m.updated}"
                             + (" (replayed)" if m.replay_of else "") for m in manifests),
        f"decoding: temperature {settings.get('temperature', '?')}, up to {settings.get('max_attempts', '?')} "
        "attempts per intent (the first plus repairs); a trial passes when every goal check holds after "
        "executing its workflow in a fresh sandbox",
        "latency is model time per intent, summed over attempts, as measured when recorded",
    ]
    if manifests and (sample := manifests[0].sample_text()):
        facts.insert(1, f"sample: {sample}; figures are for these cases only")
    if suite.startswith("bfcl-"):
        facts.append("BFCL: single-turn answers are scored by BFCL's AST checker, not executed (`executes` counts "
                     "workflows that were scored); multi_turn_base runs every turn on BFCL's API classes and is "
                     "judged by BFCL's state and response checkers; the `reference` model answers with BFCL's "
                     "ground truth")
    notes = []
    if published:
        notes.append(f"† Published, not measured here: {published.source}." + (f" {published.note}"
                                                                                 if published.note else ""))
    if gap := missing_gpt4(models, suite_path, out):
        notes.append(gap)

    md = [f"# Eval report: {suite}", "", *[f"- {f}" for f in facts], ""]
    for title, body in sections[:2]:
        md += [f"## {title}", "", _md_table(body), ""]
    md += [*[f"{n}\n" for n in notes], "![goal pass rate by difficulty](pass_by_difficulty.svg)", "",
           "![latency](latency.svg)", ""]
    for title, body in sections[2:]:
        md += [f"## {title}", "", _md_table(body) if body[1] else "(none)", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")

    parts = [f"<h1>Eval report: {html.escape(suite)}</h1>",
             "<ul>" + "".join(f"<li>{_inline(f)}</li>" for f in facts) + "</ul>"]
    for title, body in sections[:2]:
        parts += [f"<h2>{html.escape(title)}</h2>", _html_table(body)]
    parts += [f"<p class=note>{_inline(n)}</p>" for n in notes]
    parts += ["<h2>Plots</h2>", _strip_xml_header((out / "pass_by_difficulty.svg").read_text()),
              _strip_xml_header((out / "latency.svg").read_text())]
    for title, body in sections[2:]:
        parts += [f"<h2>{html.escape(title)}</h2>", _html_table(body) if body[1] else "<p>(none)</p>"]
    html_path = out / "report.html"
    html_path.write_text(_PAGE.format(title=html.escape(f"intentos eval: {suite}"), body="\n".join(parts)),
                         encoding="utf-8")
    return md_path, html_path


def _md_table(table: Table) -> str:
    header, rows = table

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text: str) -> str:
    """The little markdown the facts use (**bold**, `code`) as HTML."""
    parts = html.escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    bold = text.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(bold))


def _strip_xml_header(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
.note {{ color: #555; }}
svg {{ max-width: 100%; height: auto; display: block; margin: 1em 0; }}
</style></head>
<body>
{body}
</body></html>
"""
