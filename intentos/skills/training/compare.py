"""Compare jobs: a table of final figures and a plot of eval loss against bytes communicated."""

from __future__ import annotations

import io
from pathlib import Path

from pydantic import BaseModel

from intentos.skills.training.jobs import JobStatus, read_metrics


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


def rows(statuses: list[JobStatus]) -> list[CompareRow]:
    most = max((s.bytes for s in statuses), default=0)
    return [CompareRow(job_id=s.job_id, strategy=s.strategy, nproc=s.nproc, state=s.state, step=s.step,
                       eval_loss=s.eval_loss, eval_acc=s.eval_acc, bytes=s.bytes,
                       bytes_ratio=round(most / s.bytes, 2) if s.bytes else None) for s in statuses]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def table(found: list[CompareRow]) -> str:
    header = f"{'job':<24} {'strategy':<32} {'n':>2} {'step':>6} {'eval loss':>9} {'bytes/rank':>12} {'÷ max':>7}"
    lines = [header, "-" * len(header)]
    for r in found:
        loss = f"{r.eval_loss:.4f}" if r.eval_loss is not None else "-"
        ratio = f"{r.bytes_ratio:.1f}x" if r.bytes_ratio else "-"
        lines.append(f"{r.job_id[:24]:<24} {r.strategy[:32]:<32} {r.nproc:>2} {r.step:>6} {loss:>9} "
                     f"{human_bytes(r.bytes):>12} {ratio:>7}")
    return "\n".join(lines)


def plot_png(statuses: list[JobStatus]) -> bytes:
    """Eval loss (y) against bytes sent per rank (x, log scale), one line per job."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in statuses:
        evals = [r for r in read_metrics(Path(s.dir)) if r.get("eval_loss") is not None and "event" not in r]
        if not evals:
            continue
        xs = [max(r.get("bytes", 0), 1) for r in evals]
        ax.plot(xs, [r["eval_loss"] for r in evals], marker="o", markersize=3, label=f"{s.job_id} ({s.strategy})")
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
