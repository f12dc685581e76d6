"""Compare jobs: a table of final figures and a plot of eval loss against bytes communicated.

Two bytes ratios per job:

- at the final step (`bytes_ratio`): bytes of the most-communicating job ÷ this job's bytes, whatever
  loss each reached;
- at matched loss (`ratio_at_match`), against a reference job: see `MATCH_RULE` and `bytes_to_reach`.
  The reference is the job named by the caller or, by default, the DiLoCo job (strategy kind
  "diloco") among those compared; of several, the one whose nproc most of the other jobs share (ties:
  the first compared). Only a job with an evaluation can be the reference.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from intentos.errors import IntentosError
from intentos.skills.training.jobs import JobStatus, read_metrics

DEFAULT_TOLERANCE = 0.02
MATCH_RULE = ("reference bytes ÷ bytes this job sent until its eval loss first reached within {tol} of the "
              "reference's final eval loss (linear interpolation in bytes between the two evaluations around the "
              "crossing; the first evaluation's bytes if that one is already there); '-' = never reached")

# (bytes sent per rank so far, eval loss) at each evaluation, in the order the job ran them
EvalSeries = Sequence[tuple[float, float]]


class CompareError(IntentosError):
    """The comparison cannot be made as asked (e.g. a reference job that is not among those compared)."""


class CompareRow(BaseModel):
    job_id: str
    strategy: str
    nproc: int
    state: str
    step: int
    eval_loss: float | None
    eval_acc: float | None
    bytes: int  # total sent by one rank
    bytes_ratio: float | None  # bytes of the most-communicating job ÷ this job's bytes
    reference: str | None = None  # the job the matched-loss figures are against (None: no reference)
    final_loss_gap: float | None = None  # this job's final eval loss ÷ the reference's − 1 (0.03 = 3% worse)
    bytes_to_match: float | None = None  # bytes this job sent until it first reached the threshold; None: never
    ratio_at_match: float | None = None  # reference bytes ÷ bytes_to_match; None: never reached (or 0 bytes)


def strategy_kind(strategy: str) -> str:
    """"ddp", "diloco" or "diloco_dct", from a described strategy ("diloco H=16" -> "diloco")."""
    return strategy.split(" ", 1)[0]


def eval_series(records: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """(bytes, eval loss) of each evaluation among a job's metrics records (events left out)."""
    return [(r.get("bytes", 0), r["eval_loss"]) for r in records
            if "event" not in r and r.get("eval_loss") is not None]


def threshold(reference_loss: float, tolerance: float) -> float:
    """The loss a job must reach: the reference's final eval loss, `tolerance` (0.02 = 2%) above it."""
    return reference_loss + tolerance * abs(reference_loss)  # = loss × (1 + tolerance) for the losses here (>= 0)


def bytes_to_reach(series: EvalSeries, target: float) -> float | None:
    """Bytes a job had sent when its eval loss first reached `target` (at or below it); None if it never did.

    The first evaluation at or below `target` is found. If it is the job's first evaluation, its bytes are the
    answer (nothing earlier to interpolate from). Otherwise the crossing lies between it and the evaluation
    before (which was above `target`), and the bytes are interpolated linearly in loss between those two:
    b_prev + (loss_prev − target) / (loss_prev − loss_at) × (b_at − b_prev).
    """
    for i, (sent, loss) in enumerate(series):
        if loss <= target:
            if i == 0:
                return float(sent)
            prev_sent, prev_loss = series[i - 1]
            return prev_sent + (prev_loss - target) / (prev_loss - loss) * (sent - prev_sent)
    return None


def pick_reference(statuses: Sequence[JobStatus], reference: str | None = None) -> JobStatus | None:
    """The reference job: the one named, else the default DiLoCo job (see the module's docstring), else None."""
    if reference is not None:
        named = [s for s in statuses if s.job_id == reference]
        if not named:
            compared = ", ".join(s.job_id for s in statuses[:20]) + (" ..." if len(statuses) > 20 else "")
            raise CompareError(f"reference job {reference!r} is not among the jobs compared ({compared}); "
                               "name it among the jobs to compare")
        if named[0].eval_loss is None:
            raise CompareError(f"reference job {reference!r} has no evaluation yet, so there is no loss to match")
        return named[0]
    candidates = [s for s in statuses if strategy_kind(s.strategy) == "diloco" and s.eval_loss is not None]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    others = Counter(s.nproc for s in statuses if strategy_kind(s.strategy) != "diloco")
    for nproc, _ in others.most_common():
        same = [s for s in candidates if s.nproc == nproc]
        if same:
            return same[0]
    return candidates[0]


def rows_from(statuses: Sequence[JobStatus], series: Mapping[str, EvalSeries], reference: str | None = None,
              tolerance: float = DEFAULT_TOLERANCE) -> list[CompareRow]:
    """The table's rows, from each job's status and eval series (job id -> (bytes, eval loss) per evaluation).

    The reference's bytes are those recorded with its final evaluation (its total, for a finished job: the
    last step is always evaluated). The reference's own row matches by definition: ratio 1, gap 0.
    """
    if tolerance < 0:
        raise CompareError(f"tolerance must be 0 or more, got {tolerance}")
    most = max((s.bytes for s in statuses), default=0)
    ref = pick_reference(statuses, reference)
    ref_series = series.get(ref.job_id, ()) if ref else ()
    if ref is not None and not ref_series:
        raise CompareError(f"reference job {ref.job_id!r} has no evaluation in its metrics")
    ref_bytes, ref_loss = ref_series[-1] if ref_series else (0.0, 0.0)
    found = []
    for s in statuses:
        row = CompareRow(job_id=s.job_id, strategy=s.strategy, nproc=s.nproc, state=s.state, step=s.step,
                         eval_loss=s.eval_loss, eval_acc=s.eval_acc, bytes=s.bytes,
                         bytes_ratio=round(most / s.bytes, 2) if s.bytes else None)
        if ref is not None:
            own = series.get(s.job_id, ())
            final = own[-1][1] if own else None
            reached = float(ref_bytes) if s.job_id == ref.job_id else bytes_to_reach(own, threshold(ref_loss,
                                                                                                   tolerance))
            row.reference = ref.job_id
            row.final_loss_gap = final / ref_loss - 1 if final is not None and ref_loss else None
            row.bytes_to_match = reached
            row.ratio_at_match = ref_bytes / reached if reached else None
        found.append(row)
    return found


def rows(statuses: list[JobStatus], reference: str | None = None,
         tolerance: float = DEFAULT_TOLERANCE) -> list[CompareRow]:
    """The table's rows, reading each job's eval series from its metrics file (see `rows_from`)."""
    return rows_from(statuses, {s.job_id: eval_series(read_metrics(Path(s.dir))) for s in statuses},
                     reference, tolerance)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def rule(found: Sequence[CompareRow], tolerance: float = DEFAULT_TOLERANCE) -> str:
    """The line under the table that says how the matched-loss columns were worked out."""
    ref = next((r.reference for r in found if r.reference), None)
    if ref is None:
        return ("ratio at matched loss: no reference (no DiLoCo job with an evaluation among those compared; "
                "name one as the reference)")
    return f"ratio at matched loss vs {ref}: " + MATCH_RULE.format(tol=f"{tolerance * 100:g}%")


def table(found: list[CompareRow], tolerance: float = DEFAULT_TOLERANCE) -> str:
    header = (f"{'job':<24} {'strategy':<32} {'n':>2} {'step':>6} {'eval loss':>9} {'vs ref':>8} {'bytes/rank':>12} "
              f"{'÷ max':>7} {'bytes@match':>12} {'ref ÷ @match':>12}")
    lines = [header, "-" * len(header)]
    for r in found:
        loss = f"{r.eval_loss:.4f}" if r.eval_loss is not None else "-"
        ratio = f"{r.bytes_ratio:.1f}x" if r.bytes_ratio else "-"
        gap = f"{r.final_loss_gap * 100:+.1f}%" if r.final_loss_gap is not None else "-"
        if r.reference is not None and r.job_id == r.reference:
            gap = "ref"
        at = human_bytes(r.bytes_to_match) if r.bytes_to_match is not None else "-"
        matched = (f"{r.ratio_at_match:.2f}x" if r.ratio_at_match is not None
                   else "n/a" if r.bytes_to_match is not None else "-")
        lines.append(f"{r.job_id[:24]:<24} {r.strategy[:32]:<32} {r.nproc:>2} {r.step:>6} {loss:>9} {gap:>8} "
                     f"{human_bytes(r.bytes):>12} {ratio:>7} {at:>12} {matched:>12}")
    lines.append(rule(found, tolerance))
    return "\n".join(lines)


def plot_png(statuses: list[JobStatus]) -> bytes:
    """Eval loss (y) against bytes sent per rank (x, log scale), one line per job."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in statuses:
        evals = eval_series(read_metrics(Path(s.dir)))
        if not evals:
            continue
        ax.plot([max(sent, 1) for sent, _ in evals], [loss for _, loss in evals], marker="o", markersize=3,
                label=f"{s.job_id} ({s.strategy})")
    ax.set_xscale("log")
    ax.set_xlabel("bytes sent per rank (log)")
    ax.set_ylabel("eval loss")
    ax.set_title("eval loss vs communication")
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
