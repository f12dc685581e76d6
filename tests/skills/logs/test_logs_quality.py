"""Log statement quality (QuLog): mining Python/Java, checking a tree with the shipped model, the model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from intentos.errors import AppError
from intentos.skills.logs.quality import (
    LEVEL_FEATURES,
    LEVEL_FIT,
    MODEL_PATH,
    QualityCheckError,
    QualityModel,
    QualityModelError,
    check_quality,
    clean_static_text,
    default_model,
    main,
    pos_tags,
    train_from_statements,
    weak_sufficiency_label,
)
from intentos.skills.logs.quality_mining import LogStatement, mine_java_source, mine_paths, mine_python_source

# ------------------------------------------------------------------------------------------- mining Python

PY_SOURCE = '''\
import logging
import warnings
import numpy as np

logger = logging.getLogger(__name__)


class Worker:
    def run(self, n, path, i, name, user, e, catalog, dialog):
        logger.info(f"Loaded {n} items from {path!r}")
        logger.warning("Retry %d of %s", i, name)
        logging.error("Cannot open %s" % path)
        self.log.info("User {} logged in {{ok}}".format(user))
        self._logger.error("Failed: " + str(e) + " (giving up)")
        logging.getLogger("x").critical("Out of memory")
        logger.warn("Old style warn")
        logger.exception("Unhandled error in worker")
        logger.log(logging.WARNING, "Queue is %d%% full", 90)
        logger.debug("Tick")
        logger.fatal(e)
        np.log(n)
        catalog.info("not a logger")
        dialog.error("not a logger")
        warnings.warn("not a log statement")
'''


def test_python_statements_text_variables_and_levels() -> None:
    found = mine_python_source(PY_SOURCE, "w.py")
    got = [(s.line, s.level, s.level_class, s.static_text, s.variables) for s in found]
    assert got == [
        (10, "info", "info", "Loaded <*> items from <*>", ("n", "path")),
        (11, "warning", "warning", "Retry <*> of <*>", ("i", "name")),
        (12, "error", "error", "Cannot open <*>", ("path",)),
        (13, "info", "info", "User <*> logged in {ok}", ("user",)),
        (14, "error", "error", "Failed: <*> (giving up)", ("str(e)",)),
        (15, "critical", "error", "Out of memory", ()),
        (16, "warn", "warning", "Old style warn", ()),
        (17, "exception", "error", "Unhandled error in worker", ()),
        (18, "warning", "warning", "Queue is <*>% full", ("90",)),
        (19, "debug", None, "Tick", ()),
        (20, "fatal", "error", "", ("e",)),
    ]
    assert {s.language for s in found} == {"python"}


def test_python_syntax_error_is_raised_not_swallowed() -> None:
    with pytest.raises(SyntaxError):
        mine_python_source("logger.info('unclosed'\n", "bad.py")


# --------------------------------------------------------------------------------------------- mining Java

JAVA_SOURCE = '''\
package demo;

import org.slf4j.Logger;

public class Server {
    private static final Logger LOG = LoggerFactory.getLogger(Server.class);
    private static final java.util.logging.Logger julLogger = java.util.logging.Logger.getLogger("s");

    void start(String name, int port, File file, Exception e) {
        LOG.info("Started {} on port {}", name, port);
        // LOG.error("commented out, must not be found");
        /* logger.warn("block comment,
           must not be found either"); */
        String url = "http://example.org"; // a string with // inside is not a comment
        logger.error("Failed to open " + file.getName() + ": " + e.getMessage(), e);
        log.warn(SECURITY, "Login attempt for {} rejected", name);
        julLogger.log(Level.SEVERE, "Port " + port + " already in use");
        LOG.debug("tick");
        LOG.info(String.format("Connected to %s in %d ms", name, port));
        catalog.info("not a logger");
    }
}
'''


def test_java_statements_slf4j_log4j_jul_and_comments() -> None:
    found = mine_java_source(JAVA_SOURCE, "Server.java")
    got = [(s.line, s.level, s.level_class, s.static_text) for s in found]
    assert got == [
        (10, "info", "info", "Started <*> on port <*>"),
        (15, "error", "error", "Failed to open <*>: <*>"),
        (16, "warn", "warning", "Login attempt for <*> rejected"),
        (17, "severe", "error", "Port <*> already in use"),
        (18, "debug", None, "tick"),
        (19, "info", "info", "Connected to <*> in <*> ms"),
    ]
    assert found[0].variables == ("name", "port")
    assert found[1].variables == ("file.getName()", "e.getMessage()", "e")
    assert {s.language for s in found} == {"java"}


# ------------------------------------------------------------------------------------ checking a source tree

BAD_AND_GOOD = '''\
import logging

logger = logging.getLogger(__name__)
log = logger


def connect(v, port, path, opt):
    logger.info("Failed to connect to database, giving up")
    logger.error("x")
    log.info("%s", v)
    logger.info("Server started on port %d", port)
    logger.error("Could not open configuration file %s", path)
    logger.warning("Deprecated option %s will be removed in the next release", opt)
'''

JAVA_GOOD = '''\
class Pool {
    void close(String host) {
        LOG.info("Connection to {} closed by peer", host);
    }
}
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    (root / "pkg").mkdir()
    (root / "pkg" / "db.py").write_text(BAD_AND_GOOD, encoding="utf-8")
    (root / "pkg" / "Pool.java").write_text(JAVA_GOOD, encoding="utf-8")
    # Files that cannot be mined: each must be reported and skipped, never stop the scan.
    (root / "pkg" / "broken.py").write_text("def f(:\n    logger.info('x')\n", encoding="utf-8")
    (root / "pkg" / "binary.py").write_bytes(b"\x00\x01logger.info(\x00\xff\xfe")
    (root / "pkg" / "latin.py").write_bytes(b"logger.info('caf\xe9 ouvert')\n")  # not UTF-8, no coding cookie
    (root / "pkg" / "Bad.java").write_bytes(b"class A { void f() { log.info(\"\xff\xfe\"); } }")
    (root / "pkg" / "notes.txt").write_text("logger.error('not source')", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def report(tree: Path):  # noqa: ANN201 - the report type is what is under test
    return check_quality(tree)


def _findings_at(report, line: int) -> dict[str, object]:  # noqa: ANN001
    return {f.problem: f for f in report.findings if f.file.endswith("db.py") and f.line == line}


def test_level_mismatch_is_flagged_with_prediction_and_suggestion(report) -> None:  # noqa: ANN001
    found = _findings_at(report, 8)
    assert set(found) == {"level"}
    f = found["level"]
    assert f.level == "info" and f.text == "Failed to connect to database, giving up"
    assert f.predicted in {"error", "warning"}
    assert 1 / 3 < f.confidence <= 1.0  # the predicted level is the most probable of three
    assert f".{f.predicted}(" in f.suggestion


@pytest.mark.parametrize(("line", "text"), [(9, "x"), (10, "<*>")])
def test_insufficient_text_is_flagged(report, line: int, text: str) -> None:  # noqa: ANN001
    found = _findings_at(report, line)
    assert set(found) == {"linguistic"}  # too little text to judge its level: no level finding as well
    f = found["linguistic"]
    assert f.text == text and f.predicted == "insufficient" and f.suggestion


@pytest.mark.parametrize("line", [11, 12, 13])
def test_good_statements_are_not_flagged(report, line: int) -> None:  # noqa: ANN001
    assert _findings_at(report, line) == {}


def test_report_totals_and_skipped_files(report, tree: Path) -> None:  # noqa: ANN001
    assert report.files_scanned == 6  # .py and .java only; notes.txt is not source
    assert report.statements_checked == 7
    assert report.statements_per_language == {"java": 1, "python": 6}
    assert not [f for f in report.findings if f.file.endswith("Pool.java")]
    skipped = {Path(s.split(": ", 1)[0]).name: s.split(": ", 1)[1] for s in report.skipped}
    assert set(skipped) == {"broken.py", "binary.py", "latin.py", "Bad.java"}
    assert report.files_skipped == 4
    assert "SyntaxError" in skipped["broken.py"] and "UTF-8" in skipped["Bad.java"]
    counts = report.counts
    assert counts["total"] == len(report.findings) == counts["level"] + counts["linguistic"]
    assert counts["level"] >= 1 and counts["linguistic"] >= 2
    text = report.to_text()
    assert f"{tree / 'pkg' / 'db.py'}:8: [level]" in text and "skipped" in text
    assert json.loads(json.dumps(report.to_dict()))["counts"] == counts


def test_single_file_and_cli_check(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = check_quality(tree / "pkg" / "db.py")
    assert one.files_scanned == 1 and one.statements_checked == 6
    assert main(["check", "--json", str(tree / "pkg" / "db.py")]) == 0
    assert json.loads(capsys.readouterr().out)["statements_checked"] == 6


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(QualityCheckError, match="no-such-dir"):
        check_quality(tmp_path / "no-such-dir")
    assert issubclass(QualityCheckError, AppError)
    assert main(["check", str(tmp_path / "no-such-dir")]) == 2
    assert "no-such-dir" in capsys.readouterr().err


def test_vendored_and_test_folders_only_skipped_when_asked(tmp_path: Path) -> None:
    for folder in ("_vendor", "tests", "app"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.py").write_text("logger.info('Cache warmed up for %s', key)\n", encoding="utf-8")
    assert len(mine_paths([tmp_path]).statements) == 3
    assert [Path(s.file).parent.name for s in mine_paths([tmp_path], {"_vendor", "tests"}).statements] == ["app"]


# -------------------------------------------------------------------------------------------- the model


def test_weak_sufficiency_rule() -> None:
    for text in ("<*>", "", "x", "Error: <*>", "done", "<*>: <*>"):
        assert weak_sufficiency_label(pos_tags(text)) == 0, text
    for text in ("Failed to connect to database <*>", "Connection closed", "Invalid token <*>"):
        assert weak_sufficiency_label(pos_tags(text)) == 1, text


def test_shipped_model_metadata_says_how_it_was_trained() -> None:
    assert MODEL_PATH.stat().st_size < 2_500_000
    meta = default_model().metadata
    assert meta["roots"] and all(isinstance(r, str) for r in meta["roots"])
    assert meta["statements_mined"] > 1000 and meta["projects"] > 10
    assert "intentos" not in meta["statements_per_project"]
    assert "developers" in meta["level_labels"] and "weak" in meta["sufficiency_labels"]
    assert meta["trained_on"][:2] == "20"


_TINY = [
    ("error", "Failed to open file <*>"), ("error", "Could not connect to <*>"), ("error", "Crash in worker <*>"),
    ("error", "Unable to read config <*>"), ("error", "Fatal error while writing <*>"),
    ("error", "Failed to parse response from <*>"),
    ("warning", "Deprecated option <*> is ignored"), ("warning", "Retrying request to <*>"),
    ("warning", "Slow response from <*>"), ("warning", "Deprecated call, use <*> instead"),
    ("warning", "Cache nearly full, retrying later"), ("warning", "Option <*> is deprecated"),
    ("info", "Started server on port <*>"), ("info", "Loaded <*> plugins"), ("info", "User <*> logged in"),
    ("info", "Started worker <*>"), ("info", "Loaded config from <*>"), ("info", "Server listening on <*>"),
    ("debug", "<*>"), ("info", "x"), ("error", "<*>: <*>"), ("warning", "oops"),
]


def test_tiny_model_trains_and_round_trips_through_json(tmp_path: Path) -> None:
    statements = [LogStatement(f"p{i}.py", 1, "python", lvl, text) for i, (lvl, text) in enumerate(_TINY)]
    model = train_from_statements(statements, {"note": "tiny"})
    # "<*>: <*>" has no words, so it says nothing about a level; debug is not one of the three classes.
    assert model.metadata["level_counts"] == {"error": 6, "info": 7, "warning": 7}
    probe = ["Failed to read file <*>", "Started plugin <*>", "<*>", "Deprecated option <*>", "no static text here"]
    path = model.save(tmp_path / "m.json")
    again = train_from_statements(statements, {"note": "tiny"}).save(tmp_path / "again.json")
    assert again.read_bytes() == path.read_bytes()  # retraining is deterministic
    loaded = QualityModel.load(path)
    assert loaded.metadata["note"] == "tiny"
    for a, b in zip(model.predict_level(probe), loaded.predict_level(probe), strict=True):
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-3 for k in a)
    np.testing.assert_allclose(model.predict_sufficient(probe), loaded.predict_sufficient(probe), atol=1e-3)
    assert max(loaded.predict_level(["Failed to read file <*>"])[0].items(), key=lambda kv: kv[1])[0] == "error"

    # The JSON model is the sklearn pipeline it was fitted from, not an approximation of it.
    used = [(lvl, clean_static_text(t)) for lvl, t in _TINY if lvl != "debug" and t != "<*>: <*>"]
    texts, labels = [t for _, t in used], [lvl for lvl, _ in used]
    vecs = [TfidfVectorizer(**spec) for spec in LEVEL_FEATURES]
    clf = LogisticRegression(C=LEVEL_FIT["c"], class_weight=LEVEL_FIT["class_weight"], max_iter=3000)
    clf.fit(sparse.hstack([v.fit_transform(texts) for v in vecs]), labels)
    cleaned = [clean_static_text(t) for t in probe]
    want = clf.predict_proba(sparse.hstack([v.transform(cleaned) for v in vecs]))
    got = np.array([[p[c] for c in clf.classes_] for p in loaded.predict_level(probe)])
    np.testing.assert_allclose(got, want, atol=2e-3)


@pytest.mark.parametrize(("content", "problem"), [
    ("", "empty"), ("{not json", "not valid JSON"), ('{"format": "other/1"}', "not a log quality model"),
    ('{"format": "intentos-log-quality/1", "level": {}}', "incomplete"),
])
def test_bad_model_file_is_a_clear_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QualityModelError, match=problem) as err:
        QualityModel.load(path)
    assert str(path) in str(err.value) and "retrain" in str(err.value)
    with pytest.raises(QualityModelError, match="cannot be read"):
        QualityModel.load(tmp_path / "missing.json")


def test_training_needs_two_levels() -> None:
    with pytest.raises(QualityModelError, match="two levels"):
        train_from_statements([LogStatement("a.py", 1, "python", "info", "Started server <*>")] * 3)
