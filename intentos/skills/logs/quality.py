"""Log statement quality, after QuLog (Bogatinovski et al., arXiv:2204.02618).

Two properties are checked on every log statement mined from source (see `quality_mining`):

1. Level: a classifier reads the static text with placeholders removed and predicts error/warning/info;
   labels are the developers' own levels in real open-source code, as in the paper (debug/trace are
   dropped, critical/fatal/exception count as error, warn as warning). A statement is flagged when the
   prediction disagrees with the level in the code by a probability margin.
2. Linguistic sufficiency: is the static text rich enough to describe an event? The paper feeds
   part-of-speech tag sequences to a classifier trained on human labels. Neither a trained tagger nor
   human labels can be had offline here, so (a) `pos_tags` is a small deterministic tagger: closed-class
   word lists (determiners, prepositions, pronouns, auxiliaries...), a list of verbs common in logs with
   their inflections, suffix morphology for the open classes and word shape for code identifiers,
   numbers and placeholders; (b) labels are weak labels from `weak_sufficiency_label` (a rule, written
   down below) and the classifier learns tag n-gram patterns from them. Its held-out score therefore
   measures agreement with that rule on unseen projects, not agreement with people.

Both classifiers are TF-IDF + logistic regression (scikit-learn) and are shipped as plain weights in
`quality_model.json` (inside the package), so checking code needs neither the training corpus nor a
pickled sklearn object. The shipped model is trained on the log statements of the open-source code
installed with the interpreter (`default_training_roots()`: the venv's site-packages, the stdlib, the base
interpreter's site-packages; test and vendored folders skipped; intentos itself excluded); its metadata
records the roots, counts, label provenance and date. Regenerate it (deterministic for the same installed
packages) with `python -m intentos.skills.logs.quality retrain [ROOT ...]`; `benchmarks/bench_logs_quality.py`
evaluates the same recipe on projects held out from training.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from intentos.errors import AppError
from intentos.skills import kit
from intentos.skills.logs.quality_mining import (
    LEVEL_CLASSES,
    PLACEHOLDER,
    TRAINING_SKIP_DIRS,
    LogStatement,
    MiningResult,
    mine_paths,
    normalize_level,
)

MODEL_PATH = Path(__file__).with_name("quality_model.json")
MODEL_FORMAT = "intentos-log-quality/1"
RETRAIN_COMMAND = "python -m intentos.skills.logs.quality retrain"

# Folders not entered when checking a tree: tool caches and installed environments, not the user's code.
CHECK_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox",
                             ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages", "dist-packages"})


class QualityModelError(AppError):
    """The log quality model file is missing, empty or not a model; names the file and how to rebuild it."""


class QualityCheckError(AppError):
    """A path given to the quality checker does not exist."""

# ------------------------------------------------------------------------------------- text for levels

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def clean_static_text(text: str) -> str:
    """Static text with placeholders, format specs and numbers removed; identifiers split into words."""
    text = text.replace(PLACEHOLDER, " ")
    text = re.sub(r"%[-#0 +\d.]*[sdrifgexXo]|\{[^{}]*\}", " ", text)  # unfilled specs are placeholders too
    text = _CAMEL.sub(" ", text)
    text = re.sub(r"[_./\\]+", " ", text)
    text = re.sub(r"\d+", " ", text)
    return " ".join(re.findall(r"[a-z]+(?:'[a-z]+)?|[^\sa-z\d]", text.lower()))


def has_words(text: str) -> bool:
    """Whether the static text has any word left once variables are removed (else its level is not judged)."""
    return re.search(r"[a-z]", clean_static_text(text)) is not None


# --------------------------------------------------------------------------------------- POS-ish tagger

_CLOSED = {
    "DET": "a an the this that these those each every any some all both either neither another such no",
    "PRON": "i me my we us our you your he him his she her it its they them their mine ours yours theirs "
            "itself themselves myself ourselves yourself something nothing anything everything someone",
    "ADP": "of in on at by for with from to into onto over under about after before during since until "
           "via per without within between through across against among towards upon than as like off out "
           "up down",
    "CONJ": "and or but nor so yet because if unless while whereas although though when where whether then "
            "else otherwise",
    "AUX": "is are was were be been being am has have had do does did will would can could should may might "
           "must shall 's 're 've 'll 'd",
    "NEG": "not n't never cannot can't won't don't doesn't didn't isn't aren't wasn't weren't couldn't "
           "shouldn't wouldn't hasn't haven't",
    "ADV": "here there now already still again too very also just only even ever soon later once twice "
           "maybe perhaps instead anyway almost always often",
    "INTJ": "ok okay hello hi hey oops yes yay wow ugh hmm",
}
_CLOSED_TAG = {w: tag for tag, words in _CLOSED.items() for w in words.split()}

# Verbs that carry events in logs (base forms); inflected forms are found by stripping -s/-ed/-ing.
_VERBS = set("""
abort accept access add allocate apply assign attempt authenticate block build cache call cancel catch
change check clean clear close collect commit compile complete compute configure connect contain continue
convert copy create crash decode delete deny deploy detect disable disconnect download drop dump emit enable
encode end enter evict exceed execute exist exit expect expire fail fetch find finish fix flush force get give
handle hang ignore import initialize insert install invoke kill launch leave load lock log lose make mark
match merge migrate miss move need open override parse pass patch pause perform process publish pull push put
read receive reconnect recover redirect refresh register reject release reload remove rename render repeat
replace request require reset resolve restart restore resume retry return reuse run save schedule select send
serve set shut skip sleep start stop store submit succeed support suspend switch sync take terminate throw time
timeout trigger truncate try unlock unregister update upgrade upload use validate verify wait warn write yield
""".split())
_IRREGULAR_VERBS = set("""
found made took gave got lost ran sent set put shut began begun went gone done built caught thrown threw
hung left read wrote written held kept met sold told thought brought bought become became
""".split())
_NOUN_SUFFIX = ("tion", "sion", "ment", "ness", "ity", "ance", "ence", "ism", "ure", "ship", "age", "er", "or",
                "ist", "dom", "ery", "th", "logy")
_ADJ_SUFFIX = ("able", "ible", "ous", "ful", "less", "ive", "ical", "ic", "al", "ary", "ant", "ent", "ish")
_ADJECTIVES = set("""
invalid valid unknown empty missing new old bad good wrong unexpected unsupported deprecated available
unavailable ready full busy free slow fast done dead alive null true false ok local remote current default
""".split())

_TOKEN = re.compile(re.escape(PLACEHOLDER) + r"|[A-Za-z][\w'.\-/:]*[\w]|[A-Za-z]|\d+(?:\.\d+)*|\S")


def _verb_stem_known(word: str) -> bool:
    if word in _VERBS or word in _IRREGULAR_VERBS:
        return True
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            # start-ed, retri-ed -> retry, clos-ed -> close, stopp-ed -> stop
            candidates = {stem, stem + "e", stem[:-1] + "y" if stem.endswith("i") else stem,
                          stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem}
            if candidates & _VERBS:
                return True
    return False


def _tag_word(token: str) -> str:
    if token == PLACEHOLDER:
        return "VAR"
    if token[0].isdigit():
        return "NUM"
    if not token[0].isalpha():
        return "PUNCT"
    # Code-shaped tokens (snake_case, dotted.names, paths, camelCase, key=value) name an object.
    if re.search(r"[_./:]|\d|[a-z][A-Z]", token):
        return "IDENT"
    word = token.lower()
    if word in _CLOSED_TAG:
        return _CLOSED_TAG[word]
    if word in _ADJECTIVES:
        return "ADJ"
    if _verb_stem_known(word):
        return "VERB"
    if len(word) > 4 and word.endswith(("ing", "ed")):
        return "VERB"
    if len(word) > 4 and word.endswith("ly"):
        return "ADV"
    if len(word) > 4 and word.endswith(_NOUN_SUFFIX):
        return "NOUN"
    if len(word) > 4 and word.endswith(_ADJ_SUFFIX):
        return "ADJ"
    return "NOUN"  # open-class default: most unknown words in log messages are nouns


def pos_tags(text: str) -> list[str]:
    """Coarse part-of-speech-like tags of a static text (VAR for placeholders, IDENT for code names)."""
    return [_tag_word(t) for t in _TOKEN.findall(text)]


_CONTENT = {"NOUN", "VERB", "ADJ", "ADV", "IDENT"}
_NATURAL = {"NOUN", "VERB", "ADJ", "ADV"}


def weak_sufficiency_label(tags: Sequence[str]) -> int:
    """The weak label used for training: 1 = sufficient, 0 = insufficient.

    Insufficient when the text has fewer than two content words (nouns, verbs, adjectives, adverbs, code
    identifiers), or no noun/identifier/verb at all, or no natural-language word (only identifiers).
    So `log.error(e)`, "here", "Error: %s", "done" are insufficient; "Invalid token %s" and "Connection
    closed" are sufficient.
    """
    content = [t for t in tags if t in _CONTENT]
    if len(content) < 2:
        return 0
    if not any(t in {"NOUN", "IDENT", "VERB"} for t in content):
        return 0
    if not any(t in _NATURAL for t in content):
        return 0
    return 1


def tag_document(text: str) -> str:
    """The tag sequence as a 'sentence' for the sufficiency classifier: start/end markers, then a token for
    the number of content words (capped at 3) because n-grams alone cannot count (the paper's sequence
    model can)."""
    tags = pos_tags(text)
    n_content = sum(t in _CONTENT for t in tags)
    return " ".join(["BOS", *tags, "EOS", f"NCONTENT{min(n_content, 3)}"])


# --------------------------------------------------------------------------------- linear text models


@dataclass
class _Analyzer:
    analyzer: str  # "word" | "char_wb"
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray
    sublinear_tf: bool
    token_pattern: str | None = None
    lowercase: bool = True

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        kwargs: dict[str, Any] = {"analyzer": self.analyzer, "ngram_range": self.ngram_range,
                                  "vocabulary": self.vocabulary, "lowercase": self.lowercase}
        if self.token_pattern is not None:
            kwargs["token_pattern"] = self.token_pattern
        counts = CountVectorizer(**kwargs).transform(texts).astype(np.float64)
        if self.sublinear_tf:
            counts.data = 1.0 + np.log(counts.data)
        # Same arithmetic as TfidfVectorizer.transform: tf * idf, then L2 per row.
        return normalize(sparse.csr_matrix(counts.multiply(self.idf)), norm="l2")


@dataclass
class LinearTextModel:
    """TF-IDF features (one or more analyzers) and a softmax-linear layer, stored as plain numbers.

    Fitting is scikit-learn's (TfidfVectorizer + LogisticRegression). Only inference is re-expressed,
    with sklearn's own CountVectorizer on the fitted vocabulary: tf (sublinear) * idf, L2 per row, then
    softmax(x @ coef.T + intercept), which is exactly what the fitted pipeline computes. The reason is the
    shipped file: it is JSON of vocabulary, idf and coefficients, which loads without executing anything
    (a pickled sklearn object would run code on load and break across sklearn versions).
    """

    classes: list[str]
    analyzers: list[_Analyzer]
    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy import sparse

        if not texts:
            return np.zeros((0, len(self.classes)))
        x = sparse.hstack([a.transform(texts) for a in self.analyzers]).tocsr()
        z = x @ self.coef.T + self.intercept
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], specs: Sequence[dict[str, Any]],
            c: float = 4.0, class_weight: str | None = None) -> LinearTextModel:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        analyzers, blocks = [], []
        for spec in specs:
            vec = TfidfVectorizer(**spec)
            blocks.append(vec.fit_transform(texts))
            analyzers.append(_Analyzer(spec["analyzer"], tuple(spec["ngram_range"]), dict(vec.vocabulary_),
                                       vec.idf_.astype(np.float64), bool(spec.get("sublinear_tf", False)),
                                       spec.get("token_pattern"), bool(spec.get("lowercase", True))))
        x = sparse.hstack(blocks).tocsr()
        clf = LogisticRegression(C=c, class_weight=class_weight, max_iter=3000)
        clf.fit(x, list(labels))
        coef, intercept = clf.coef_, clf.intercept_
        if coef.shape[0] == 1:  # binary: softmax over [-z/2, z/2] is exactly sigmoid(z)
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls([str(c_) for c_ in clf.classes_], analyzers, coef, intercept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "analyzers": [
                {"analyzer": a.analyzer, "ngram_range": list(a.ngram_range), "sublinear_tf": a.sublinear_tf,
                 "token_pattern": a.token_pattern, "lowercase": a.lowercase,
                 # Terms in column order so the vocabulary is a list, not a dict (smaller file).
                 "terms": [t for t, _ in sorted(a.vocabulary.items(), key=lambda kv: kv[1])],
                 "idf": [round(float(v), 4) for v in a.idf]}
                for a in self.analyzers
            ],
            "coef": [[round(float(v), 4) for v in row] for row in self.coef],
            "intercept": [round(float(v), 4) for v in self.intercept],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearTextModel:
        analyzers = [
            _Analyzer(a["analyzer"], tuple(a["ngram_range"]), {t: i for i, t in enumerate(a["terms"])},
                      np.asarray(a["idf"], dtype=np.float64), bool(a["sublinear_tf"]), a.get("token_pattern"),
                      bool(a.get("lowercase", True)))
            for a in d["analyzers"]
        ]
        return cls(list(d["classes"]), analyzers, np.asarray(d["coef"], dtype=np.float64),
                   np.asarray(d["intercept"], dtype=np.float64))


# Feature settings; capped vocabularies keep the shipped file small (well under 2 MB).
LEVEL_FEATURES: list[dict[str, Any]] = [
    {"analyzer": "word", "ngram_range": (1, 2), "min_df": 2, "max_features": 6000, "sublinear_tf": True,
     "token_pattern": r"(?u)\b\w+\b|[!?:]"},
    {"analyzer": "char_wb", "ngram_range": (3, 5), "min_df": 3, "max_features": 12000, "sublinear_tf": True},
]
# Level: error is the rarest class and the one that matters most, hence balanced class weights; C was
# picked among 0.5/1/2/4 (balanced or not) by project-grouped CV (benchmarks/bench_logs_quality.py).
LEVEL_FIT: dict[str, Any] = {"c": 0.5, "class_weight": "balanced"}
SUFFICIENCY_FIT: dict[str, Any] = {"c": 4.0, "class_weight": None}
SUFFICIENCY_FEATURES: list[dict[str, Any]] = [
    {"analyzer": "word", "ngram_range": (1, 3), "min_df": 2, "max_features": 3000, "sublinear_tf": True,
     "lowercase": False, "token_pattern": r"\S+"},
]


# ------------------------------------------------------------------------------------------ the model


@dataclass
class QualityModel:
    """The two QuLog classifiers plus a record of how, when and on what they were trained."""

    level: LinearTextModel
    sufficiency: LinearTextModel
    metadata: dict[str, Any] = field(default_factory=dict)

    def predict_level(self, static_texts: Sequence[str]) -> list[dict[str, float]]:
        """Probability of error/info/warning for each static text."""
        probs = self.level.predict_proba([clean_static_text(t) for t in static_texts])
        return [dict(zip(self.level.classes, map(float, row), strict=True)) for row in probs]

    def predict_sufficient(self, static_texts: Sequence[str]) -> list[float]:
        """Probability that each static text is linguistically sufficient."""
        probs = self.sufficiency.predict_proba([tag_document(t) for t in static_texts])
        return [float(p) for p in probs[:, self.sufficiency.classes.index("1")]]

    def save(self, path: str | os.PathLike[str] = MODEL_PATH) -> Path:
        out = Path(path)
        doc = {"format": MODEL_FORMAT, "metadata": self.metadata, "level": self.level.to_dict(),
               "sufficiency": self.sufficiency.to_dict()}
        # Written beside the target and renamed, so a reader never sees a half-written (or empty) model.
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True), encoding="utf-8")
        os.replace(tmp, out)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str] = MODEL_PATH) -> QualityModel:
        """Read a model written by `save` (plain JSON: no code is executed while loading)."""
        hint = f"rebuild it with `{RETRAIN_COMMAND}`"
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise QualityModelError(f"log quality model {path} cannot be read ({exc}); {hint}") from exc
        if not raw.strip():
            raise QualityModelError(f"log quality model {path} is empty; {hint}")
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise QualityModelError(f"log quality model {path} is not valid JSON ({exc}); {hint}") from exc
        if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise QualityModelError(f"{path} is not a log quality model (format {found!r}, "
                                    f"expected {MODEL_FORMAT!r}); {hint}")
        try:
            return cls(LinearTextModel.from_dict(doc["level"]), LinearTextModel.from_dict(doc["sufficiency"]),
                       doc.get("metadata", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise QualityModelError(f"log quality model {path} is incomplete ({exc!r}); {hint}") from exc


_DEFAULT_MODEL: QualityModel | None = None


def default_model() -> QualityModel:
    """The shipped model (loaded once)."""
    global _DEFAULT_MODEL
    if _DEFAULT_MODEL is None:
        _DEFAULT_MODEL = QualityModel.load(MODEL_PATH)
    return _DEFAULT_MODEL


def project_of(file: str, roots: Sequence[str | os.PathLike[str]]) -> str:
    """The project a mined file belongs to: its top-level package (or module) under the deepest root that
    holds it. Roots can nest (an interpreter's stdlib folder holds its site-packages)."""
    p = Path(file).resolve()
    best: Path | None = None
    for root in roots:
        r = Path(root).resolve()
        if (r == p or r in p.parents) and (best is None or len(r.parts) > len(best.parts)):
            best = r
    if best is None:
        return p.parent.name
    rel = p.relative_to(best).parts
    if not rel:
        return p.stem
    return rel[0][:-3] if rel[0].endswith(".py") else rel[0]


def level_examples(statements: Iterable[LogStatement]) -> tuple[list[str], list[str]]:
    """(static texts, developer levels) usable by the level model: debug/trace and empty texts dropped."""
    texts, labels = [], []
    for s in statements:
        label = s.level_class
        if label is not None and has_words(s.static_text):
            texts.append(s.static_text)
            labels.append(label)
    return texts, labels


def train_from_statements(statements: Sequence[LogStatement], metadata: dict[str, Any] | None = None) -> QualityModel:
    """Fit both classifiers on already-mined statements (the benchmark uses this for its train split)."""
    # Exact duplicates (same level and text, e.g. a copied module) would only reweight the loss toward
    # boilerplate; the first occurrence (stable mining order) is kept.
    unique = list({(s.level_class or s.level, s.static_text): s for s in statements}.values())
    texts, labels = level_examples(unique)
    if len(set(labels)) < 2:
        raise QualityModelError("need statements of at least two levels (error/warning/info) to train")
    level = LinearTextModel.fit([clean_static_text(t) for t in texts], labels, LEVEL_FEATURES, **LEVEL_FIT)
    docs = [tag_document(s.static_text) for s in unique]
    weak = [str(weak_sufficiency_label(pos_tags(s.static_text))) for s in unique]
    if len(set(weak)) < 2:
        raise QualityModelError("weak sufficiency labels have a single class; mine more statements")
    sufficiency = LinearTextModel.fit(docs, weak, SUFFICIENCY_FEATURES, **SUFFICIENCY_FIT)
    meta = dict(metadata or {})
    meta.update({
        "trained_on": datetime.now(UTC).date().isoformat(),  # a date, so same-day retrains are byte-identical
        "statements_used": len(unique),
        "level_labels": "developers' own levels: critical/fatal/exception->error, warn->warning, debug/trace dropped",
        "level_counts": dict(sorted(Counter(labels).items())),
        "sufficiency_labels": ("weak labels (no human labels offline) from the rule weak_sufficiency_label() on "
                               "pos_tags(): insufficient (0) when the text has fewer than two content words, no "
                               "noun/identifier/verb, or only code identifiers; else sufficient (1)"),
        "evaluation": "benchmarks/bench_logs_quality.py: 5-fold cross-validation grouped by project",
        "sufficiency_counts": dict(sorted(Counter(weak).items())),
        "features": {"level": LEVEL_FEATURES, "sufficiency": SUFFICIENCY_FEATURES},
        "fit": {"level": LEVEL_FIT, "sufficiency": SUFFICIENCY_FIT},
        "python": sys.version.split()[0],
        "sklearn": _sklearn_version(),
    })
    return QualityModel(level, sufficiency, meta)


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def default_training_roots() -> list[str]:
    """Open-source code that is always there offline: this environment's site-packages, the interpreter's
    stdlib, and the base interpreter's site-packages when running in a venv (in that order)."""
    venv = sysconfig.get_paths()
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    roots: list[str] = []
    for r in (venv["purelib"], venv["platlib"], venv["stdlib"], base["purelib"], base["platlib"]):
        if r not in roots and Path(r).is_dir():
            roots.append(r)
    return roots


OWN_PROJECTS = frozenset({"intentos", "__editable___intentos_0_1_0_finder"})
"""Never trained on: the checker must not learn from the code it is shipped in."""


def mine_training_statements(roots: Sequence[str | os.PathLike[str]]) -> tuple[list[LogStatement], dict[str, Any]]:
    """Mine `roots` for training: tests/vendored/nested site-packages folders skipped, our own package
    excluded, and a project found under two roots (pip in the venv and in the base interpreter) kept
    only from the first. Returns the statements and a description of what was mined."""
    roots = [str(r) for r in roots]
    statements: list[LogStatement] = []
    projects: Counter[str] = Counter()
    files_scanned = files_skipped = duplicates = 0
    for root in roots:
        mined = mine_paths([root], TRAINING_SKIP_DIRS)
        files_scanned += mined.files_scanned
        files_skipped += mined.files_skipped
        here: Counter[str] = Counter()
        for s in mined.statements:
            project = project_of(s.file, [root])
            if project in OWN_PROJECTS or project.startswith("intentos"):
                continue
            if project in projects:
                duplicates += 1
                continue
            here[project] += 1
            statements.append(s)
        projects.update(here)
    meta = {
        "roots": roots,
        "skipped_dirs": sorted(TRAINING_SKIP_DIRS),
        "excluded_projects": sorted(OWN_PROJECTS),
        "files_scanned": files_scanned,
        "files_skipped": files_skipped,
        "statements_mined": len(statements),
        "statements_dropped_as_second_copy_of_a_project": duplicates,
        "statements_per_language": dict(sorted(Counter(s.language for s in statements).items())),
        "projects": len(projects),
        "statements_per_project": dict(sorted(projects.items())),
        "levels_as_written": dict(sorted(Counter(s.level for s in statements).items())),
    }
    return statements, meta


def train_quality_model(roots: Sequence[str | os.PathLike[str]] | None = None) -> QualityModel:
    """Mine log statements under `roots` (default: `default_training_roots()`) and train both classifiers."""
    statements, meta = mine_training_statements(list(roots) if roots else default_training_roots())
    return train_from_statements(statements, meta)


# -------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class QualityFinding:
    """One flagged statement: where, what the developer wrote, what is wrong and what to do."""

    file: str
    line: int
    language: str
    level: str
    text: str
    problem: str  # "level" | "linguistic"
    predicted: str  # a level for "level"; "insufficient" for "linguistic"
    confidence: float
    suggestion: str


@dataclass
class QualityReport:
    """Findings over a tree, and what was looked at."""

    findings: list[QualityFinding]
    statements_checked: int
    files_scanned: int
    files_skipped: int
    skipped: list[str]
    statements_per_language: dict[str, int]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(f.problem for f in self.findings)
        return {"level": c.get("level", 0), "linguistic": c.get("linguistic", 0), "total": len(self.findings)}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = self.counts
        return d

    def to_text(self) -> str:
        lines = [
            f"Checked {self.statements_checked} log statements in {self.files_scanned} files "
            f"({self.files_skipped} skipped, unparsable) in {self.seconds:.2f}s: "
            f"{self.counts['level']} level findings, {self.counts['linguistic']} linguistic findings."
        ]
        for f in sorted(self.findings, key=lambda f: (f.file, f.line, f.problem)):
            shown = f.text if f.text.strip() else "(no static text)"
            lines.append(f"{f.file}:{f.line}: [{f.problem}] {f.level} {shown!r}")
            lines.append(f"    {f.suggestion} (confidence {f.confidence:.2f})")
        for s in self.skipped:
            lines.append(f"skipped {s}")
        return "\n".join(lines)


def _method_name(level: str, language: str) -> str:
    if language == "java":
        return {"warning": "warn"}.get(level, level)
    return level


def _linguistic_suggestion(text: str) -> str:
    tags = pos_tags(text)
    words = [t for t in tags if t in _CONTENT]
    if not words:
        return ("The message is only a variable: say what happened and to which object, "
                "e.g. 'Failed to parse config <path>: <error>'.")
    if not any(t == "VERB" for t in tags):
        return "Say what happened (an action or state such as 'failed to open', 'started', 'was rejected')."
    if not any(t in {"NOUN", "IDENT"} for t in tags):
        return "Name the object the event is about (which file, request, connection, user...)."
    return "Add what happened and to which object, so the line can be understood without the code."


def check_statements(statements: Sequence[LogStatement], model: QualityModel | None = None, *,
                     level_margin: float = 0.3, insufficient_threshold: float = 0.5) -> list[QualityFinding]:
    """Findings for already-mined statements, sorted by file, line and problem.

    Linguistic: flagged when P(insufficient) >= insufficient_threshold. Level (error/warning/info only;
    debug/trace are a verbosity choice and are not judged): flagged when P(predicted) - P(developer's
    level) >= level_margin, so near-ties are left alone. A text already flagged as insufficient gets no
    level finding: a message that says too little says nothing reliable about its severity either.
    """
    model = model or default_model()
    findings: list[QualityFinding] = []
    insufficient: set[int] = set()
    for k, (s, p_ok) in enumerate(zip(statements, model.predict_sufficient([s.static_text for s in statements]),
                                      strict=True)):
        if 1.0 - p_ok >= insufficient_threshold:
            insufficient.add(k)
            findings.append(QualityFinding(s.file, s.line, s.language, s.level, s.static_text, "linguistic",
                                           "insufficient", round(1.0 - p_ok, 3), _linguistic_suggestion(s.static_text)))
    levelled = [s for k, s in enumerate(statements)
                if k not in insufficient and s.level_class is not None and has_words(s.static_text)]
    for s, probs in zip(levelled, model.predict_level([s.static_text for s in levelled]), strict=True):
        predicted = max(probs, key=probs.__getitem__)
        actual = s.level_class or ""
        margin = probs[predicted] - probs.get(actual, 0.0)
        if predicted != actual and margin >= level_margin:
            findings.append(QualityFinding(
                s.file, s.line, s.language, s.level, s.static_text, "level", predicted, round(probs[predicted], 3),
                f"Level '{s.level}' reads like '{predicted}' "
                f"(p={probs[predicted]:.2f} vs {probs.get(actual, 0.0):.2f}); "
                f"consider .{_method_name(predicted, s.language)}(...).",
            ))
    findings.sort(key=lambda f: (f.file, f.line, f.problem))
    return findings


def check_quality(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                  model: QualityModel | None = None, *, level_margin: float = 0.3,
                  insufficient_threshold: float = 0.5, cancelled: kit.Cancel = None) -> QualityReport:
    """Mine the Python/Java files under `paths` and report log statements of doubtful quality."""
    start = time.perf_counter()
    roots = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    missing = [str(r) for r in roots if not Path(r).exists()]
    if missing:
        raise QualityCheckError(f"no such file or folder: {', '.join(missing)}")
    model = model or default_model()  # fails early, with the model file named, before any scanning
    # Vendored and test folders are skipped only for training; a user checking a tree wants all of it.
    mined: MiningResult = mine_paths(roots, CHECK_SKIP_DIRS, cancelled)
    findings = check_statements(mined.statements, model, level_margin=level_margin,
                                insufficient_threshold=insufficient_threshold)
    return QualityReport(findings, len(mined.statements), mined.files_scanned, mined.files_skipped, mined.skipped,
                         mined.per_language(), round(time.perf_counter() - start, 3))


# ------------------------------------------------------------------------------------------------- CLI


def retrain(roots: Sequence[str] | None = None, out: str | os.PathLike[str] = MODEL_PATH) -> dict[str, Any]:
    """Mine `roots` (default: `default_training_roots()`), train, write the model file; return its metadata.

    Deterministic for a given set of installed packages: files are mined in sorted order, duplicates
    resolved by first occurrence, and both fits are deterministic (lbfgs); only `trained_on` (a date) varies.
    """
    global _DEFAULT_MODEL
    model = train_quality_model(roots)
    path = model.save(out)
    if Path(out).resolve() == MODEL_PATH.resolve():
        _DEFAULT_MODEL = None  # the next default_model() reads the new file
    return {**model.metadata, "file": str(path), "file_bytes": path.stat().st_size}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intentos.skills.logs.quality",
                                     description="Log statement quality (QuLog): check a tree or retrain.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="report questionable log statements under PATHs")
    p_check.add_argument("paths", nargs="+")
    p_check.add_argument("--json", action="store_true", help="print the report as JSON")
    p_train = sub.add_parser("retrain", help="mine ROOTs (default: site-packages and stdlib) and rewrite the model")
    p_train.add_argument("roots", nargs="*")
    p_train.add_argument("--out", default=str(MODEL_PATH))
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            report = check_quality(args.paths)
            print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
            return 0
        meta = retrain(args.roots or None, args.out)
    except AppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in meta.items() if k not in {"statements_per_project", "features"}}
    print(json.dumps(shown, indent=2, default=str))
    return 0


__all__ = [
    "LEVEL_CLASSES", "LogStatement", "QualityCheckError", "QualityFinding", "QualityModel", "QualityModelError",
    "QualityReport", "check_quality", "check_statements", "clean_static_text", "default_model",
    "default_training_roots", "mine_training_statements", "normalize_level", "pos_tags", "project_of", "retrain",
    "train_from_statements", "train_quality_model", "weak_sufficiency_label",
]

if __name__ == "__main__":
    raise SystemExit(main())
