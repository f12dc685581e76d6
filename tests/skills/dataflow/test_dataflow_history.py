"""Execution histories (C3O, Bell) and the Ernest baseline, on the shared public data and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intentos.skills.dataflow.ernest import Ernest
from intentos.skills.dataflow.history import HistoryFileError, load_history

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def test_c3o_histories_load_with_contexts() -> None:
    grep = load_history(DATA / "c3o" / "grep.tsv")
    assert grep.format == "c3o" and grep.algorithm == "grep"
    assert grep.param_names == ["line_length", "lines", "p_occurrence"]
    assert len(grep.runs) == 810 and grep.scaleouts() == [2, 4, 6, 8, 10, 12]
    contexts = grep.contexts()
    assert len(contexts) == 27 and all(len(runs) == 30 for runs in contexts.values())  # 6 scale-outs x 5 reps
    first = grep.runs[0]
    assert (first.scaleout, first.machine_type, first.data_size_mb, first.runtime_s, first.line) == (
        2, "c4.2xlarge", 15150.0, 150.0, 2)
    assert first.params == {"line_length": "100", "lines": "150000000", "p_occurrence": "0.5"}


def test_bell_history_is_one_context_in_seconds() -> None:
    bell = load_history(DATA / "bell" / "sgd.csv")
    assert bell.format == "bell" and len(bell.contexts()) == 1
    assert bell.scaleouts() == list(range(4, 61, 4))
    assert bell.runs[0].runtime_s == pytest.approx(663.72)  # 663720 ms


@pytest.mark.parametrize(("text", "line", "message"), [
    ("instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tk\tgross_runtime\n"
     "2\tm4\t16\t64\t100\t3\t10\n4\tm4\t32\t128\tlots\t3\t9\n", 3, "column data_size_MB: 'lots' is not a number"),
    ("instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tk\tgross_runtime\n2\tm4\t16\t64\t100\t3\n",
     2, "expected 7 tab-separated columns, found 6"),
    ("instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tk\tgross_runtime\n2.5\tm4\t16\t64\t1\t3\t10\n",
     2, "not a whole number of machines"),
    ("instance_count\tmachine_type\tslots\tmemory\tdata_size_MB\tk\tgross_runtime\n2\tm4\t16\t64\t1\t3\t-1\n",
     2, "is not a positive number"),
    ("Nodes,Runtime\n4,1000\n8,\n", 3, "column Runtime: '' is not a number"),
    ("Nodes,Runtime,Extra\n4,1000,1\n", 1, "Bell header must be Nodes,Runtime"),
    ("a;b\n1;2\n", 1, "neither a C3O TSV"),
])
def test_malformed_rows_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / ("bad.tsv" if "\t" in text else "bad.csv")
    path.write_text(text)
    with pytest.raises(HistoryFileError) as info:
        load_history(path)
    assert str(info.value).startswith(f"{path}:{line}: ") and message in str(info.value)
    assert info.value.line == line


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="no such file"):
        load_history(tmp_path / "nope.tsv")
    (tmp_path / "empty.csv").write_text("Nodes,Runtime\n")
    with pytest.raises(HistoryFileError, match="no runs"):
        load_history(tmp_path / "empty.csv")


def test_ernest_recovers_its_own_model_and_stays_non_negative() -> None:
    m = np.arange(2, 13, 2)
    truth = 5 + 800 / m + 3 * np.log(m) + 0.5 * m
    fit = Ernest.fit(m, truth)
    assert np.allclose(fit.predict(m), truth, rtol=1e-6)
    assert np.allclose(fit.theta, [5, 800, 3, 0.5], rtol=1e-4)
    # Runtimes that grow with m would want a negative 1/m weight: NNLS keeps every term >= 0.
    rising = Ernest.fit(m, 10 + 2 * m - 30 / m)
    assert min(rising.theta) >= 0


def test_ernest_on_bell_data_interpolates_within_a_few_percent() -> None:
    bell = load_history(DATA / "bell" / "grep.csv")
    given = [r for r in bell.runs if r.scaleout in (4, 32, 60)]
    fit = Ernest.fit([r.scaleout for r in given], [r.runtime_s for r in given])
    inside = [m for m in bell.scaleouts() if 4 < m < 60]
    means = np.array([np.mean([r.runtime_s for r in bell.runs if r.scaleout == m]) for m in inside])
    assert np.mean(np.abs(fit.predict(inside) - means) / means) < 0.15
