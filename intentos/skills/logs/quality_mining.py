"""Mining log statements from source code (the input side of QuLog, arXiv:2204.02618).

A log statement is split, as in the paper, into its level, its static text (what the developer typed)
and its variables (what is filled in at run time). Python is read with `ast`, so f-strings, %-format,
`.format` and concatenation are understood exactly; Java is read with a small scanner (comments
blanked, balanced parentheses, string literals) because no Java parser is available offline.
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from intentos.skills import kit

PLACEHOLDER = "<*>"
"""Written into `static_text` wherever a variable is inserted (the LogHub convention)."""

# Level vocabulary as written in code, per logging API (Python logging, SLF4J/Log4j, java.util.logging).
PY_LEVEL_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal"}
JAVA_LEVEL_METHODS = {"trace", "debug", "info", "warn", "error", "fatal", "severe", "warning", "fine", "finer",
                      "finest", "config"}

# The three classes of the paper; debug/trace (and j.u.l. fine*/config) are dropped because their use is
# a verbosity choice, not a statement about severity.
LEVEL_CLASSES = ("error", "info", "warning")
_LEVEL_MAP = {
    "info": "info",
    "warn": "warning", "warning": "warning",
    "error": "error", "exception": "error", "critical": "error", "fatal": "error", "severe": "error",
}

# Receivers that are loggers: `logger`, `log`, `LOG`, `_LOGGER`, `self.logger`, `logging`, `app_log`...
# but not `catalog` or `dialog` (the `log` must start the name or follow an underscore).
_LOGGER_NAME = re.compile(r"(?:^|_)(?:log|logs|logger|logging)$|logger", re.IGNORECASE)

# printf-style conversion specs used by Python %-format and Java String.format.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[hlL]?[diouxXeEfFgGcrsab%n]")
_BRACE_FIELD = re.compile(r"\{[^{}]*\}")


def normalize_level(level: str) -> str | None:
    """Map a level as written in code to error/warning/info, or None for debug/trace-like levels."""
    return _LEVEL_MAP.get(level.lower())


@dataclass(frozen=True)
class LogStatement:
    """One log call found in source: where it is, its level as written, static text and variables."""

    file: str
    line: int
    language: str
    level: str
    static_text: str
    variables: tuple[str, ...] = ()

    @property
    def level_class(self) -> str | None:
        """The developer's level in the paper's three classes (None when it is debug/trace)."""
        return normalize_level(self.level)


@dataclass
class MiningResult:
    """Statements found, plus what was scanned and what had to be skipped (and why)."""

    statements: list[LogStatement] = field(default_factory=list)
    files_scanned: int = 0
    files_skipped: int = 0
    skipped: list[str] = field(default_factory=list)

    def per_language(self) -> dict[str, int]:
        return dict(sorted(Counter(s.language for s in self.statements).items()))


# ---------------------------------------------------------------------------------------------- Python


def _percent_to_placeholders(text: str) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        if m.group(0) == "%%":
            return "%"
        count += 1
        return PLACEHOLDER

    return _PERCENT_SPEC.sub(repl, text), count


def _brace_to_placeholders(text: str) -> str:
    # `{{`/`}}` are literal braces in str.format; protect them before replacing fields.
    text = text.replace("{{", "\0").replace("}}", "\1")
    text = _BRACE_FIELD.sub(PLACEHOLDER, text)
    return text.replace("\0", "{").replace("\1", "}")


def _py_message(node: ast.expr, extra_args: list[ast.expr]) -> tuple[str, list[str]] | None:
    """Static text and variables of a Python log message expression (None: not a message at all)."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str):
            return "", [ast.unparse(node)]
        if extra_args:  # logger.info("x=%s", x): the logging module does the %-formatting itself.
            text, _ = _percent_to_placeholders(node.value)
            return text, [ast.unparse(a) for a in extra_args]
        return node.value, []
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        variables: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                parts.append(PLACEHOLDER)
                variables.append(ast.unparse(value.value))
        return "".join(parts), variables
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
        text, _ = _percent_to_placeholders(node.left.value)  # type: ignore[attr-defined]
        right = node.right
        elts = right.elts if isinstance(right, ast.Tuple) else [right]
        return text, [ast.unparse(e) for e in elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts, variables = [], []
        for term in _flatten_add(node):
            sub = _py_message(term, [])
            if sub is None:
                continue
            text, vars_ = sub
            if _is_str(term) or isinstance(term, ast.JoinedStr):
                parts.append(text)
            else:
                parts.append(PLACEHOLDER)
            variables.extend(vars_)
        return "".join(parts), variables
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and _is_str(node.func.value)):
        text = _brace_to_placeholders(node.func.value.value)  # type: ignore[attr-defined]
        variables = [ast.unparse(a) for a in node.args] + [ast.unparse(k.value) for k in node.keywords]
        return text, variables
    # Anything else (a variable, str(e), a call): no static text at all, only a variable.
    return "", [ast.unparse(node)]


def _is_str(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _flatten_add(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _flatten_add(node.left) + _flatten_add(node.right)
    return [node]


def _receiver_name(node: ast.expr) -> str | None:
    """Last name of the object a method is called on: `self.logger` -> logger, `getLogger(x)` -> getLogger."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        inner = _receiver_name(node.func)
        if inner and inner.lower() in {"getlogger", "get_logger", "getchild"}:
            return "logger"
    return None


def _py_level_of_log_call(call: ast.Call) -> str | None:
    # logger.log(logging.WARNING, "..."): the level is the first argument.
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Attribute) and (first.attr.lower() in _LEVEL_MAP or first.attr.lower() == "debug"):
        return first.attr.lower()
    return None


def mine_python_source(source: str | bytes, file: str = "<string>") -> list[LogStatement]:
    """Log statements in Python source. Raises SyntaxError (or ValueError) when the source doesn't parse."""
    tree = ast.parse(source, filename=file)
    found: list[LogStatement] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        receiver = _receiver_name(node.func.value)
        if receiver is None or not _LOGGER_NAME.search(receiver):
            continue
        if method in PY_LEVEL_METHODS:
            level, args = method, list(node.args)
        elif method == "log" and (lvl := _py_level_of_log_call(node)) is not None:
            level, args = lvl, list(node.args[1:])
        else:
            continue
        if not args:
            msg = next((k.value for k in node.keywords if k.arg in {"msg", "message"}), None)
            if msg is None:
                continue
            args = [msg]
        parsed = _py_message(args[0], args[1:])
        if parsed is None:
            continue
        text, variables = parsed
        found.append(LogStatement(file, node.lineno, "python", level, text, tuple(variables)))
    found.sort(key=lambda s: s.line)
    return found


# ------------------------------------------------------------------------------------------------ Java

_JAVA_CALL = re.compile(r"\b([A-Za-z_$][\w$]*)\s*\.\s*([a-z]+)\s*\(")


def _blank_java_comments(source: str) -> str:
    """Replace comments with spaces (newlines kept, so offsets and line numbers stay right)."""
    out = list(source)
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in "\"'":
            i = _skip_java_literal(source, i)
            continue
        if source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
            continue
        if source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = ["\n" if ch == "\n" else " " for ch in source[i:j]]
            i = j
            continue
        i += 1
    return "".join(out)


def _skip_java_literal(source: str, i: int) -> int:
    """Index just past the string/char literal that starts at i (tolerates an unterminated one)."""
    quote = source[i]
    if source.startswith('"""', i):  # text block
        j = source.find('"""', i + 3)
        return len(source) if j < 0 else j + 3
    j = i + 1
    while j < len(source):
        if source[j] == "\\":
            j += 2
            continue
        if source[j] == quote or source[j] == "\n":
            return j + 1
        j += 1
    return j


def _java_args(source: str, open_paren: int) -> tuple[list[str], int] | None:
    """Top-level comma-separated arguments of the call whose '(' is at open_paren, and the end index."""
    depth, i, start, args = 0, open_paren, open_paren + 1, []
    while i < len(source):
        c = source[i]
        if c in "\"'":
            i = _skip_java_literal(source, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(source[start:i].strip())
                return [a for a in args if a], i
        elif c == "," and depth == 1:
            args.append(source[start:i].strip())
            start = i + 1
        elif c == ";" and depth <= 1:
            return None  # unbalanced call: give up on this one rather than swallow the file
        i += 1
    return None


def _java_split_plus(expr: str) -> list[str]:
    terms, depth, i, start = [], 0, 0, 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'":
            i = _skip_java_literal(expr, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "+" and depth == 0:
            terms.append(expr[start:i].strip())
            start = i + 1
        i += 1
    terms.append(expr[start:].strip())
    return [t for t in terms if t]


_JAVA_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _java_string_value(term: str) -> str | None:
    """The value of a Java string literal term (None when the term is not a single literal)."""
    if len(term) >= 2 and term[0] == '"' and term[-1] == '"' and _skip_java_literal(term, 0) == len(term):
        body = term[1:-1]
        return re.sub(r"\\(.)", lambda m: _JAVA_ESCAPES.get(m.group(1), m.group(1)), body)
    return None


def _java_message(expr: str, rest: list[str]) -> tuple[str, list[str]]:
    fmt = re.fullmatch(r"String\s*\.\s*format\s*\((.*)\)", expr, re.DOTALL)
    if fmt:
        inner = _java_args("(" + fmt.group(1) + ")", 0)
        if inner and inner[0]:
            text, variables = _java_message(inner[0][0], [])
            text, _ = _percent_to_placeholders(text)
            return text, variables + inner[0][1:]
    parts, variables = [], []
    for term in _java_split_plus(expr):
        value = _java_string_value(term)
        if value is None:
            parts.append(PLACEHOLDER)
            variables.append(term)
        else:
            parts.append(value)
    text = "".join(parts)
    if rest:  # SLF4J / Log4j2 parameterised messages: `{}` is filled from the following arguments.
        text = text.replace("{}", PLACEHOLDER)
        variables.extend(rest)
    return text, variables


def mine_java_source(source: str, file: str = "<string>") -> list[LogStatement]:
    """Log statements in Java source (SLF4J, Log4j, commons-logging, java.util.logging method names)."""
    code = _blank_java_comments(source)
    found: list[LogStatement] = []
    for m in _JAVA_CALL.finditer(code):
        receiver, method = m.group(1), m.group(2)
        if (method not in JAVA_LEVEL_METHODS and method != "log") or not _LOGGER_NAME.search(receiver):
            continue
        parsed = _java_args(code, m.end() - 1)
        if parsed is None or not parsed[0]:
            continue
        args = parsed[0]
        if method == "log":  # java.util.logging / Log4j: log(Level.WARNING, "...")
            lvl = re.fullmatch(r"(?:[\w$]+\s*\.\s*)*([A-Za-z]+)", args[0])
            if lvl is None or lvl.group(1).lower() not in JAVA_LEVEL_METHODS or len(args) < 2:
                continue
            method, args = lvl.group(1).lower(), args[1:]
        # A leading Marker (log.info(MARKER, "...")) is not the message: use the first literal-bearing argument.
        if len(args) > 1 and '"' not in args[0] and '"' in args[1]:
            args = args[1:]
        text, variables = _java_message(args[0], args[1:])
        line = code.count("\n", 0, m.start()) + 1
        found.append(LogStatement(file, line, "java", method, text, tuple(variables)))
    return found


# ----------------------------------------------------------------------------------------------- trees

_SUFFIX_LANG = {".py": "python", ".java": "java"}
# Cheap pre-filter: a file with no `.level(` call cannot hold a log statement, so it isn't parsed at all.
_MAYBE_LOG = re.compile(rb"\.\s*(?:debug|info|warn|warning|error|exception|critical|fatal|severe|log|trace)\s*\(")

VENDORED_DIRS = frozenset({"_vendor", "vendor", "vendored", "_vendored", "node_modules", "__pycache__", ".git"})
"""Vendored copies of other projects: skipped when mining for training (one project's statements would
otherwise count twice, under two project names)."""

TRAINING_SKIP_DIRS = VENDORED_DIRS | {"test", "tests", "testing", "site-packages", "dist-packages"}
"""Also skipped for training: test suites log canned messages to exercise logging itself, and an installed
interpreter's stdlib folder holds its own site-packages, which is mined as a root of its own."""


def iter_source_files(paths: Iterable[str | os.PathLike[str]],
                      skip_dirs: Collection[str] = frozenset()) -> Iterator[Path]:
    """Python and Java files under the given files/folders, in a stable order."""
    for root in paths:
        p = Path(root)
        if p.is_file():
            if p.suffix in _SUFFIX_LANG:
                yield p
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
            for name in sorted(filenames):
                if os.path.splitext(name)[1] in _SUFFIX_LANG:
                    yield Path(dirpath) / name


def mine_file(path: Path) -> list[LogStatement]:
    """Statements in one file. Raises SyntaxError/ValueError/UnicodeDecodeError/OSError when unreadable."""
    data = path.read_bytes()
    if not _MAYBE_LOG.search(data):
        return []
    if path.suffix == ".py":
        # Bytes, so that ast honours a PEP 263 coding cookie (latin-1 sources exist) and a BOM.
        return mine_python_source(data, str(path))
    return mine_java_source(data.decode("utf-8"), str(path))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    if isinstance(exc, OSError):
        return f"cannot read ({exc.strerror or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"[:200]


def mine_paths(paths: Iterable[str | os.PathLike[str]], skip_dirs: Collection[str] = frozenset(),
               cancelled: kit.Cancel = None) -> MiningResult:
    """Mine every Python/Java file under `paths` (folders named in `skip_dirs` are not entered).

    A file that cannot be read or parsed (binary, not UTF-8, syntax error, unreadable) is skipped and
    listed in `skipped` as "path: reason"; it never stops the scan. A set `cancelled` does, between files.
    """
    result = MiningResult()
    for path in iter_source_files(paths, skip_dirs):
        kit.check(cancelled)
        result.files_scanned += 1
        try:
            result.statements.extend(mine_file(path))
        except (SyntaxError, ValueError, UnicodeDecodeError, OSError, RecursionError, MemoryError) as exc:
            result.files_skipped += 1
            result.skipped.append(f"{path}: {_reason(exc)}")
    return result
