"""Scripted intent files (`workflows/*.yaml`): run non-interactively, journaled like any run.

    name: send-boat-licence
    description: Mail the boat licence to the harbour office.
    fixture: fixtures/office.yaml      # relative to this file, or inline (a mapping)
    intent: Send my boat licence to the harbour office
    workflow:                          # optional: pinned, runs with no model
      start: find_title
      states: {...}

A file with a pinned `workflow` runs exactly that. A file with only an `intent` is
resolved by the Controller with the configured model first.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from intentos import yamlfile
from intentos.fixture import Fixture
from intentos.workflow import Workflow, from_loaded


class IntentFile(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    name: str
    description: str | None = None
    intent: str | None = None
    workflow: Workflow | None = None
    fixture: Fixture | None = None

    @classmethod
    def load(cls, path: str | Path) -> IntentFile:
        path = Path(path)
        doc = yamlfile.load(path)
        data = doc.data
        if not isinstance(data, dict):
            raise doc.error("an intent file must be a mapping with `intent` and/or `workflow`")
        allowed = {"name", "description", "intent", "workflow", "fixture"}
        for key in data:
            if key not in allowed:
                raise doc.error(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})", (key,))
        if not data.get("intent") and not data.get("workflow"):
            raise doc.error("the file needs an `intent`, a pinned `workflow`, or both")
        for key in ("name", "description", "intent"):
            if key in data and not isinstance(data[key], str):
                raise doc.error(f"`{key}` must be text", (key,))
        workflow = from_loaded(doc, ("workflow",)) if data.get("workflow") is not None else None
        fixture = None
        if isinstance(data.get("fixture"), str):
            try:
                target = (path.parent / data["fixture"]).resolve()
                found = target.is_file()
            except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a loop of links
                raise doc.error(f"fixture file {data['fixture']!r} cannot be looked up ({exc})", ("fixture",)) from None
            if not found:
                raise doc.error(f"fixture file {data['fixture']!r} not found (looked at {target})", ("fixture",))
            fixture = Fixture.load(target)
        elif isinstance(data.get("fixture"), dict):
            fixture = Fixture.from_loaded(doc, ("fixture",))
        elif data.get("fixture") is not None:
            raise doc.error("`fixture` must be a file name or a mapping", ("fixture",))
        if workflow is not None and data.get("intent") and workflow.intent is None:
            workflow = workflow.model_copy(update={"intent": data["intent"]})
        return cls(path=path, name=data.get("name") or path.stem, description=data.get("description"),
                   intent=data.get("intent"), workflow=workflow, fixture=fixture)

    @property
    def pinned(self) -> bool:
        return self.workflow is not None

