"""How the built-in apps say what is wrong with the content of one of their files, in one short line."""

from __future__ import annotations


def content_problem(exc: BaseException) -> str:
    """What went wrong with a file's content, in a few words on one line."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return "too big to hold in memory"
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def one_line(text: str) -> str:
    """Text with every run of white space (newlines too) made one space."""
    return " ".join(str(text).split())


def shown_path(path: str) -> str:
    """A path as an error shows it: control characters in a file name are escaped, not printed."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
