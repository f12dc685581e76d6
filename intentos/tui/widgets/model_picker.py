"""The model picker: every configured backend, marked with whether it can serve now.

Reachability means asking servers, which can take seconds, so it is checked in a worker
thread after the screen is up; until then a spec shows `…`.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.message import Message
from textual.widgets import Select


class ModelPicker(Select[str]):
    class Reachability(Message):
        def __init__(self, results: dict[str, tuple[bool, str]]) -> None:
            super().__init__()
            self.results = results

    def __init__(self, specs: list[str], check: Callable[[str], tuple[bool, str]], **kwargs: object) -> None:
        self.specs = specs
        self.check = check
        self.reachability: dict[str, tuple[bool, str]] = {}
        super().__init__([(f"{s}  …", s) for s in specs], allow_blank=False, value=specs[0],
                         **kwargs)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.probe()

    @work(thread=True, exclusive=True, group="reachability")
    def probe(self) -> None:
        results = {}
        for spec in self.specs:
            try:
                results[spec] = self.check(spec)
            except Exception as exc:  # a broken setting is an unreachable model, not a crash
                results[spec] = (False, str(exc))
        self.post_message(self.Reachability(results))

    def on_model_picker_reachability(self, message: Reachability) -> None:
        self.reachability = message.results
        chosen = self.value
        with self.prevent(Select.Changed):  # relabelling is not the user picking a model
            self.set_options([(_label(s, self.reachability.get(s)), s) for s in self.specs])
            self.value = chosen
            # The value may not have changed, so the label in the closed picker would stay stale: redraw it.
            self.mutate_reactive(Select.value)


def _label(spec: str, result: tuple[bool, str] | None) -> str:
    if result is None:
        return f"{spec}  …"
    return f"{spec}  {'✓' if result[0] else '✗ unreachable'}"
