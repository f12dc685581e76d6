"""`training.compare`: the bytes ratio at matched loss, on hand-made eval series and planted job folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentos.app import Context
from intentos.errors import AppError
from intentos.skills.training import compare as cmp
from intentos.skills.training import jobs
from intentos.skills.training.app import CompareArgs, TrainingApp
from intentos.skills.training.cli import app as training_cli
from intentos.skills.training.jobs import JobStatus

STRATEGIES = {"ddp": {"kind": "ddp"}, "diloco": {"kind": "diloco", "H": 4},
              "diloco_dct": {"kind": "diloco_dct", "H": 4, "tile": 16, "k": 2}}
DESCRIBED = {"ddp": "ddp", "diloco": "diloco H=4", "diloco_dct": "diloco_dct H=4 tile=16 k=2"}

# (bytes so far, eval loss) per evaluation. The reference (DiLoCo) ends at loss 1.0 having sent 400 bytes.
REF = [(100, 3.0), (200, 2.0), (400, 1.0)]
DCT = [(10, 2.0), (20, 1.5), (30, 0.5)]  # crosses 1.02 between its 2nd and 3rd evaluations
DDP = [(1000, 3.0), (2000, 1.5)]  # never gets within 2% of 1.0
SERIES = {"dl": REF, "dct": DCT, "ddp": DDP}


def status(job_id: str, kind: str, series: list[tuple[int, float]], nproc: int = 2) -> JobStatus:
    return JobStatus(job_id=job_id, dir="", state="finished", nproc=nproc, workload="digits",
                     strategy=DESCRIBED[kind], step=len(series) * 4, steps=len(series) * 4,
                     eval_loss=series[-1][1] if series else None, bytes=series[-1][0] if series else 0)


def three() -> list[JobStatus]:
    return [status("ddp", "ddp", DDP), status("dct", "diloco_dct", DCT), status("dl", "diloco", REF)]


def by_id(rows: list[cmp.CompareRow]) -> dict[str, cmp.CompareRow]:
    return {r.job_id: r for r in rows}


# -- the rule, on eval series ---------------------------------------------------------------------------------


def test_bytes_to_reach_interpolates_between_the_evaluations_around_the_crossing() -> None:
    assert cmp.bytes_to_reach(DCT, 1.25) == 20 + (1.5 - 1.25) / (1.5 - 0.5) * 10 == 22.5
    assert cmp.bytes_to_reach(DCT, 1.5) == 20.0  # reached exactly at an evaluation: that evaluation's bytes
    assert cmp.bytes_to_reach(DCT, 2.5) == 10.0  # already there at the first evaluation: its bytes
    assert cmp.bytes_to_reach(DCT, 0.4) is None  # never reached
    assert cmp.bytes_to_reach([], 1.0) is None
    # the first crossing counts, even if the loss goes back up afterwards
    assert cmp.bytes_to_reach([(0, 2.0), (100, 1.0), (200, 3.0), (300, 0.5)], 1.5) == 50.0


def test_a_job_reaching_the_threshold_between_two_evals_gets_the_interpolated_bytes() -> None:
    found = by_id(cmp.rows_from(three(), SERIES))
    dct = found["dct"]
    assert dct.reference == "dl"
    # threshold 1.0 × 1.02 = 1.02, crossed between (20 B, 1.5) and (30 B, 0.5)
    assert dct.bytes_to_match == pytest.approx(20 + (1.5 - 1.02) / (1.5 - 0.5) * 10, rel=1e-12)
    assert dct.bytes_to_match == pytest.approx(24.8, rel=1e-12)
    assert dct.ratio_at_match == pytest.approx(400 / 24.8, rel=1e-12)
    assert dct.final_loss_gap == pytest.approx(-0.5)
    # the final-step figures are unchanged
    assert dct.bytes == 30 and dct.bytes_ratio == round(2000 / 30, 2) and dct.eval_loss == 0.5
    ref = found["dl"]
    assert (ref.bytes_to_match, ref.ratio_at_match, ref.final_loss_gap) == (400.0, 1.0, 0.0)


def test_a_job_never_reaching_the_threshold_is_not_matched() -> None:
    ddp = by_id(cmp.rows_from(three(), SERIES))["ddp"]
    assert ddp.reference == "dl" and ddp.bytes_to_match is None and ddp.ratio_at_match is None
    assert ddp.final_loss_gap == pytest.approx(0.5)  # 1.5 / 1.0 - 1
    assert ddp.bytes_ratio == 1.0  # the most-communicating job


def test_tolerance_moves_the_threshold() -> None:
    found = by_id(cmp.rows_from(three(), SERIES, tolerance=0.5))  # threshold 1.5
    assert found["ddp"].bytes_to_match == 2000.0 and found["ddp"].ratio_at_match == 0.2
    assert found["dct"].bytes_to_match == 20.0 and found["dct"].ratio_at_match == 20.0
    tight = by_id(cmp.rows_from(three(), SERIES, tolerance=0.0))  # threshold 1.0
    assert tight["dct"].bytes_to_match == 25.0 and tight["ddp"].bytes_to_match is None
    with pytest.raises(cmp.CompareError, match="tolerance must be 0 or more"):
        cmp.rows_from(three(), SERIES, tolerance=-0.1)


def test_reference_selection() -> None:
    assert cmp.pick_reference(three()).job_id == "dl"  # the DiLoCo job, not DiLoCo-DCT
    assert cmp.pick_reference(three(), "ddp").job_id == "ddp"  # a named reference
    assert cmp.pick_reference([status("ddp", "ddp", DDP), status("dct", "diloco_dct", DCT)]) is None
    # several DiLoCo jobs: the one with the nproc the other jobs run with
    several = [status("dl1", "diloco", REF, nproc=1), status("dl4", "diloco", REF, nproc=4),
               status("dct", "diloco_dct", DCT, nproc=4), status("dl4b", "diloco", REF, nproc=4)]
    assert cmp.pick_reference(several).job_id == "dl4"
    assert cmp.pick_reference(several[:2]).job_id == "dl1"  # no other job to go by: the first compared
    # a DiLoCo job with no evaluation yet is passed over
    assert cmp.pick_reference([status("early", "diloco", []), *three()]).job_id == "dl"
    # against a named reference the figures change accordingly
    found = by_id(cmp.rows_from(three(), SERIES, reference="ddp"))  # threshold 1.5 × 1.02 = 1.53
    assert found["dl"].reference == "ddp"
    assert found["dl"].bytes_to_match == pytest.approx(200 + (2.0 - 1.53) / (2.0 - 1.0) * 200, rel=1e-12)
    assert found["dl"].ratio_at_match == pytest.approx(2000 / found["dl"].bytes_to_match, rel=1e-12)


def test_no_reference_leaves_the_matched_columns_empty() -> None:
    found = cmp.rows_from([status("ddp", "ddp", DDP), status("dct", "diloco_dct", DCT)], SERIES)
    assert all(r.reference is None and r.ratio_at_match is None and r.final_loss_gap is None for r in found)
    text = cmp.table(found)
    assert text.splitlines()[-1].startswith("ratio at matched loss: no reference")


def test_a_bad_reference_is_one_line_naming_it() -> None:
    with pytest.raises(cmp.CompareError) as err:
        cmp.rows_from(three(), SERIES, reference="ghost")
    assert str(err.value) == ("reference job 'ghost' is not among the jobs compared (ddp, dct, dl); "
                              "name it among the jobs to compare")
    with pytest.raises(cmp.CompareError, match="'early' has no evaluation yet"):
        cmp.rows_from([status("early", "diloco", []), *three()], SERIES, reference="early")


def test_the_table_shows_the_columns_and_the_rule() -> None:
    lines = cmp.table(cmp.rows_from(three(), SERIES)).splitlines()
    assert "vs ref" in lines[0] and "bytes@match" in lines[0] and "ref ÷ @match" in lines[0]
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert rows["dct"].split()[-1] == f"{400 / 24.8:.2f}x" and "-50.0%" in rows["dct"]
    assert rows["ddp"].split()[-2:] == ["-", "-"] and "+50.0%" in rows["ddp"]
    assert " ref " in rows["dl"] and rows["dl"].split()[-1] == "1.00x"
    assert lines[-1] == ("ratio at matched loss vs dl: reference bytes ÷ bytes this job sent until its eval loss "
                         "first reached within 2% of the reference's final eval loss (linear interpolation in bytes "
                         "between the two evaluations around the crossing; the first evaluation's bytes if that one "
                         "is already there); '-' = never reached")
    assert "within 50%" in cmp.table(cmp.rows_from(three(), SERIES, tolerance=0.5), 0.5).splitlines()[-1]


# -- through the app and the command line, on planted job folders ---------------------------------------------


def plant(root: Path, job_id: str, kind: str, series: list[tuple[int, float]], nproc: int = 2) -> None:
    """A finished job folder as jobs.py reads it: job.json (with the config), metrics.jsonl, exit_code."""
    folder = root / job_id
    folder.mkdir(parents=True)
    steps = len(series) * 4
    config = {"name": job_id, "workload": {"kind": "digits"}, "strategy": STRATEGIES[kind], "steps": steps,
              "eval_every": 4}
    (folder / "job.json").write_text(json.dumps({"job_id": job_id, "nproc": nproc, "config": config}))
    records = [{"event": "start", "step": 0, "world": nproc}]
    for i, (sent, loss) in enumerate(series):
        step = (i + 1) * 4
        records.append({"step": step - 1, "loss": loss + 0.1, "sync_bytes": 0, "bytes": sent, "wall": step})
        records.append({"step": step, "loss": loss, "sync_bytes": 0, "bytes": sent, "wall": step,
                        "eval_loss": loss, "eval_acc": 0.5})
    records.append({"event": "done", "step": steps, "bytes": series[-1][0], "syncs": len(series)})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "exit_code").write_text("0")


def plant_three(root: Path) -> None:
    plant(root, "ddp", "ddp", DDP)
    plant(root, "dct", "diloco_dct", DCT)
    plant(root, "dl", "diloco", REF)


def test_the_app_reports_the_ratio_at_matched_loss(ctx: Context) -> None:
    app = TrainingApp(ctx)
    plant_three(app.root)
    result = app.compare(CompareArgs(plot="plots/cmp.png"))
    assert result.reference == "dl" and result.tolerance == 0.02 and result.rule in result.table
    found = by_id(result.rows)
    assert found["dct"].bytes_to_match == pytest.approx(24.8, rel=1e-12) and found["ddp"].ratio_at_match is None
    named = app.compare(CompareArgs(job_ids=["dct", "dl"], plot="plots/b.png", reference="dct", tolerance=0.5))
    assert named.reference == "dct" and "within 50%" in named.rule
    # dct's final loss 0.5, threshold 0.75: dl never gets there
    assert by_id(named.rows)["dl"].bytes_to_match is None
    with pytest.raises(AppError, match=r"^reference job 'ghost' is not among the jobs compared \(dct, ddp, dl\)"):
        app.compare(CompareArgs(plot="plots/c.png", reference="ghost"))
    assert not app.sandbox.resolve("plots/c.png").exists()  # refused before writing the plot


def test_the_command_line_prints_and_returns_the_new_fields(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    plant_three(root)
    cli = CliRunner()
    plot = tmp_path / "cmp.png"
    done = cli.invoke(training_cli, ["compare", "--root", str(root), "--plot", str(plot), "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["reference"] == "dl" and data["tolerance"] == 0.02 and data["rule"].startswith("ratio at matched")
    found = {r["job_id"]: r for r in data["rows"]}
    assert found["dct"]["bytes_to_match"] == pytest.approx(24.8, rel=1e-12)
    assert found["ddp"]["bytes_to_match"] is None and found["ddp"]["final_loss_gap"] == pytest.approx(0.5)
    assert plot.read_bytes()[:4] == b"\x89PNG"

    shown = cli.invoke(training_cli, ["compare", "--root", str(root), "--plot", str(plot), "--tolerance", "0.5"])
    assert shown.exit_code == 0, shown.output
    assert "ratio at matched loss vs dl:" in shown.stdout and "within 50%" in shown.stdout

    bad = cli.invoke(training_cli, ["compare", "--root", str(root), "--plot", str(plot), "--reference", "ghost",
                                    "--json"])
    assert bad.exit_code == 2
    assert json.loads(bad.stdout) == {"error": "reference job 'ghost' is not among the jobs compared (dct, ddp, dl); "
                                               "name it among the jobs to compare"}


def test_a_job_whose_shell_ends_between_two_looks_is_finished_not_died(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell writes exit_code and then exits: status may find no exit_code, then no process."""
    root = tmp_path / "jobs"
    plant(root, "dct", "diloco_dct", DCT)
    (root / "dct" / "exit_code").unlink()

    def shell_finishes_now(meta: object, job_dir: Path) -> str:
        (job_dir / "exit_code").write_text("0")
        return "no process"

    monkeypatch.setattr(jobs, "_who", shell_finishes_now)
    assert jobs.status(root, "dct").state == "finished"
    (root / "dct" / "exit_code").unlink()
    monkeypatch.setattr(jobs, "_who", lambda meta, job_dir: "no process")
    assert jobs.status(root, "dct").state == "died"  # gone without an exit code
