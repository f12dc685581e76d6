"""Benchmark for log statement quality (QuLog, arXiv:2204.02618) on real open-source code.

Mines the log statements of the open-source Python code installed on this machine (the venv's
site-packages, the interpreter's stdlib and the base interpreter's site-packages: the same roots and
filters the shipped model is trained on; our own package excluded; no Java sources exist here, so Java
is counted but is 0 unless roots with .java files are given). Evaluation is held out BY PROJECT
(top-level package): 5-fold cross-validation grouped by project, so each project is predicted by a
model that never saw any of its statements; a split by statement would leak a project's wording and
boilerplate into training. Test statements whose cleaned text also occurs in the training projects are
removed too (copied modules, e.g. distutils in setuptools, would otherwise leak).

Labels: level = the developer's own level in the code (error/warning/info; critical/fatal/exception ->
error, warn -> warning, debug/trace dropped). Sufficiency = weak labels from a written rule over
part-of-speech-like tags (no human labels exist offline), so its F1 is agreement with that rule on
unseen projects; a small hand-labelled set is scored as well.

    .venv/bin/python benchmarks/bench_logs_quality.py [ROOT ...] [--folds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import GroupKFold

from intentos.skills.logs.quality import (
    LEVEL_CLASSES,
    check_statements,
    clean_static_text,
    default_model,
    default_training_roots,
    has_words,
    mine_training_statements,
    pos_tags,
    project_of,
    train_from_statements,
    weak_sufficiency_label,
)
from intentos.skills.logs.quality_mining import LogStatement

# Hand-labelled by the author of this benchmark, judging only "does the text say what happened and to
# what?" (1 = sufficient). Independent of the weak-label rule, and some cases disagree with it on purpose.
HAND_LABELLED: list[tuple[str, int]] = [
    ("<*>", 0), ("", 0), ("here", 0), ("done", 0), ("Error: <*>", 0), ("<*>: <*>", 0), ("oops", 0),
    ("step 2", 0), ("ok <*>", 0), ("--------", 0), ("got here", 0), ("in loop", 0), ("value <*>", 0),
    ("<*> <*> <*>", 0), ("Failed", 0), ("exception", 0), ("start", 0), ("finished!", 0),
    ("Failed to connect to database <*>", 1), ("Connection to <*> closed by peer", 1),
    ("Invalid token in request header <*>", 1), ("Loading configuration from <*>", 1),
    ("Retrying upload of <*> after timeout", 1), ("Cache miss for key <*>", 1),
    ("Could not parse response from server: <*>", 1), ("User <*> logged in", 1),
    ("Worker process <*> exited with code <*>", 1), ("Disk usage above threshold on <*>", 1),
    ("Skipping file <*> because it is empty", 1), ("Started HTTP server on port <*>", 1),
    ("Unable to open file <*>: permission denied", 1), ("Received shutdown signal, stopping workers", 1),
    ("Writing checkpoint to <*>", 1), ("Deprecated option <*> will be removed", 1),
]


def _evaluate(statements: list[LogStatement], roots: list[str], folds: int) -> None:
    projects = np.array([project_of(s.file, roots) for s in statements])
    n_projects = len(set(projects))
    folds = min(folds, n_projects)
    y_true: list[str] = []
    y_pred: list[str] = []
    y_major: list[str] = []
    s_true: list[int] = []
    s_pred: list[int] = []
    flagged_level = flagged_ling = checked = leaked = 0
    for k, (tr, te) in enumerate(GroupKFold(n_splits=folds).split(statements, groups=projects)):
        train = [statements[i] for i in tr]
        test = [statements[i] for i in te]
        t0 = time.perf_counter()
        model = train_from_statements(train)
        t_train = time.perf_counter() - t0
        # Texts with words that also occur in a training project leak (copied modules, shared boilerplate);
        # texts without words ("<*>", "%s: %s") are kept: they are the insufficient cases, not leaked wording.
        seen = {clean_static_text(s.static_text) for s in train if has_words(s.static_text)}
        fresh = [s for s in test if clean_static_text(s.static_text) not in seen]
        leaked += len(test) - len(fresh)
        majority = Counter(s.level_class for s in train if s.level_class).most_common(1)[0][0]
        levelled = [s for s in fresh if s.level_class and has_words(s.static_text)]
        for s, probs in zip(levelled, model.predict_level([s.static_text for s in levelled]), strict=True):
            y_true.append(s.level_class or "")
            y_pred.append(max(probs, key=probs.__getitem__))
            y_major.append(majority)
        s_true += [weak_sufficiency_label(pos_tags(s.static_text)) for s in fresh]
        s_pred += [int(p >= 0.5) for p in model.predict_sufficient([s.static_text for s in fresh])]
        findings = check_statements(fresh, model)
        flagged_level += sum(f.problem == "level" for f in findings)
        flagged_ling += sum(f.problem == "linguistic" for f in findings)
        checked += len(fresh)
        test_projects = sorted(set(projects[te]))
        print(f"  fold {k + 1}: {len(test_projects)} held-out projects ({', '.join(test_projects[:6])}"
              f"{', ...' if len(test_projects) > 6 else ''}); train {len(train)} statements ({t_train:.0f}s), "
              f"test {len(fresh)} (+{len(test) - len(fresh)} removed as seen in train)", flush=True)

    print(f"\nLevel model, {folds}-fold CV grouped by project ({n_projects} projects), "
          f"{len(y_true)} held-out statements with error/warning/info: {dict(sorted(Counter(y_true).items()))}")
    print(f"  accuracy {accuracy_score(y_true, y_pred):.3f}   macro-F1 "
          f"{f1_score(y_true, y_pred, average='macro', labels=list(LEVEL_CLASSES)):.3f}")
    print(f"  majority-class baseline (train fold's majority): accuracy {accuracy_score(y_true, y_major):.3f}   "
          f"macro-F1 {f1_score(y_true, y_major, average='macro', labels=list(LEVEL_CLASSES)):.3f}")
    print("  per class:")
    print("    " + classification_report(y_true, y_pred, labels=list(LEVEL_CLASSES), digits=3,
                                         zero_division=0).replace("\n", "\n    "))
    print(f"Sufficiency model vs weak labels on held-out projects ({len(s_true)} statements, "
          f"{s_true.count(0)} insufficient):")
    print(f"  F1(insufficient) {f1_score(s_true, s_pred, pos_label=0):.3f}   "
          f"F1(sufficient) {f1_score(s_true, s_pred, pos_label=1):.3f}   "
          f"macro-F1 {f1_score(s_true, s_pred, average='macro'):.3f}   "
          f"(baseline 'always sufficient': F1(insufficient) 0.000, accuracy {s_true.count(1) / len(s_true):.3f})")
    print(f"  (agreement with the weak-label rule, not with human judgement; {leaked} test statements were"
          f" dropped as duplicates of training text)")
    print(f"Checker on held-out statements: {flagged_level} level findings and {flagged_ling} linguistic findings "
          f"out of {checked} statements ({flagged_level / max(checked, 1):.1%} / {flagged_ling / max(checked, 1):.1%})")


def _hand_check() -> None:
    model = default_model()
    texts = [t for t, _ in HAND_LABELLED]
    gold = [y for _, y in HAND_LABELLED]
    rule = [weak_sufficiency_label(pos_tags(t)) for t in texts]
    pred = [int(p >= 0.5) for p in model.predict_sufficient(texts)]
    print(f"\nHand-labelled set ({len(gold)} texts, {gold.count(0)} insufficient), shipped model:")
    print(f"  model: accuracy {accuracy_score(gold, pred):.3f}  "
          f"F1(insufficient) {f1_score(gold, pred, pos_label=0):.3f}"
          f"   weak-label rule: accuracy {accuracy_score(gold, rule):.3f}  "
          f"F1(insufficient) {f1_score(gold, rule, pos_label=0):.3f}")
    wrong = [t for t, g, p in zip(texts, gold, pred, strict=True) if g != p]
    if wrong:
        print(f"  model disagrees with the hand label on: {wrong}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("roots", nargs="*", help="source roots to mine (default: site-packages and stdlib)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    roots = args.roots or default_training_roots()
    print("command:", " ".join([".venv/bin/python", *sys.argv]))

    t0 = time.perf_counter()
    statements, meta = mine_training_statements(roots)
    print(f"Mined {roots}: {meta['files_scanned']} files, {meta['files_skipped']} skipped (unparsable), "
          f"{len(statements)} log statements from {meta['projects']} projects in {time.perf_counter() - t0:.0f}s "
          f"({meta['statements_dropped_as_second_copy_of_a_project']} more dropped as a second copy of a project)")
    print(f"  per language: {meta['statements_per_language'] or {}}  (java 0 means no Java sources were found)")
    print(f"  levels as written: {meta['levels_as_written']}")
    top = Counter(meta["statements_per_project"]).most_common(8)
    print(f"  largest projects: {top}")
    _evaluate(statements, list(roots), args.folds)
    _hand_check()


if __name__ == "__main__":
    main()
