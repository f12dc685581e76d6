"""Fixtures: a starting sandbox described in YAML, for scripted runs, tests and evals.

    now: 2026-03-10T09:00:00        # optional fixed clock, so date arithmetic is reproducible
    timezone: Europe/Berlin         # optional
    user: {name: Alex Doe, email: alex@example.org}
    files: {Documents/car-title.pdf: "..."}
    contacts: [{name: Allianz Insurance, emails: [claims@allianz.example]}]

Every other top-level key names an app; its value is handed to that app's `seed`, which
validates it with its own model. Seeding goes into an empty sandbox only, so a fixture
never overwrites anything a user has.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intentos import yamlfile
from intentos.app import Context, UserProfile
from intentos.errors import IntentosError, WorkflowFileError
from intentos.sandbox import INTERNAL_DIR, TRASH, Sandbox
from intentos.table import FunctionTable


def _clip(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Fixture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: datetime | None = None
    timezone: str | None = None
    user: UserProfile | None = None
    apps: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/Berlin)") from None
        return value

    @classmethod
    def load(cls, path: str | Path) -> Fixture:
        doc = yamlfile.load(path)
        return cls.from_loaded(doc)

    @classmethod
    def from_loaded(cls, doc: yamlfile.LoadedYaml, at: yamlfile.Location = ()) -> Fixture:
        data = doc.data
        for key in at:
            data = data[key]
        if not isinstance(data, dict):
            raise doc.error("a fixture must be a mapping of settings and app names", at)
        own = {k: data[k] for k in ("now", "timezone", "user") if k in data}
        apps = {k: v for k, v in data.items() if k not in own}
        try:
            return cls.model_validate({**own, "apps": apps, "source": doc.path})
        except ValidationError as exc:
            raise doc.validation_error(exc, at) from None

    def apply(self, ctx: Context, table: FunctionTable) -> None:
        """Seed the (empty) sandbox of `ctx` through each app's own `seed`."""
        if not sandbox_is_empty(ctx.sandbox):
            raise IntentosError(f"fixture {self.source or ''} needs an empty sandbox; {ctx.sandbox.root} has files")
        for name, data in self.apps.items():
            if name not in table.apps:
                raise WorkflowFileError(self.source or "<fixture>", f"unknown app {name!r} in fixture "
                                        f"(installed: {', '.join(table.apps)})")
            try:
                table.apps[name](ctx).seed(data)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
                raise WorkflowFileError(self.source or "<fixture>", f"{name}: {_clip(problems)}") from None
            except WorkflowFileError:
                raise
            except IntentosError as exc:  # an app's own refusal, said of the fixture file it came from
                raise WorkflowFileError(self.source or "<fixture>", f"{name}: {_clip(str(exc))}") from None


def sandbox_is_empty(sandbox: Sandbox) -> bool:
    return not any(e.name not in (TRASH, INTERNAL_DIR) for e in sandbox.scandir())
