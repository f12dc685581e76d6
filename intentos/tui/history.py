"""Intent history: the intents typed before, newest last, kept in a text file under INTENTOS_HOME."""

from __future__ import annotations

from pathlib import Path

MAX_ENTRIES = 200


class IntentHistory:
    """A list of past intents with a cursor for up/down browsing, like a shell's history."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[str] = []
        if path is not None and path.is_file():
            try:
                self.entries = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except OSError:
                self.entries = []  # an unreadable history is no reason to refuse to start
        self._cursor = len(self.entries)

    def add(self, intent: str) -> None:
        intent = " ".join(intent.split())  # one line per entry in the file
        if not intent:
            return
        if not self.entries or self.entries[-1] != intent:
            self.entries.append(intent)
            self.entries = self.entries[-MAX_ENTRIES:]
            self._save()
        self._cursor = len(self.entries)

    def previous(self) -> str | None:
        if not self.entries:
            return None
        self._cursor = max(0, self._cursor - 1)
        return self.entries[self._cursor]

    def next(self) -> str:
        """The next newer entry; past the newest, an empty box (as in a shell)."""
        self._cursor = min(len(self.entries), self._cursor + 1)
        return self.entries[self._cursor] if self._cursor < len(self.entries) else ""

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("\n".join(self.entries) + "\n", encoding="utf-8")
        except OSError:
            pass  # losing history is better than losing the session
