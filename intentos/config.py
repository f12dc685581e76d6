"""User settings for the agent itself: who the user is, their time zone, the sandbox, SMTP.

They come from the `agent:` section of the YAML config file (`intentos.configfile`),
with `INTENTOS_SANDBOX` and `INTENTOS_TIMEZONE` / `TZ` from the environment taking
precedence, and command-line flags above both. Model settings live in the same file
under `models:` (see `intentos.backends.settings`).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator

from intentos import locations
from intentos.app import Context, UserProfile
from intentos.configfile import read_config
from intentos.sandbox import Sandbox


class SmtpSettings(BaseModel):
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True


class AgentSettings(BaseModel):
    user: UserProfile = Field(default_factory=UserProfile)
    timezone: str = Field(default_factory=lambda: local_timezone())
    sandbox: Path = Field(default_factory=locations.default_sandbox)
    step_timeout: float = 120.0
    smtp: SmtpSettings | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
        return value


def load_settings(overrides: dict[str, Any] | None = None) -> AgentSettings:
    """File < environment < overrides (flags)."""
    config = read_config()
    data: dict[str, Any] = dict(config.section("agent")) if config is not None else {}
    if env := os.environ.get("INTENTOS_SANDBOX"):
        data["sandbox"] = env
    if env := os.environ.get("INTENTOS_TIMEZONE"):
        data["timezone"] = env
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return AgentSettings.model_validate(data)
    except ValidationError as exc:
        if config is not None:
            raise config.validation_error(exc, ("agent",)) from None
        raise


def make_context(settings: AgentSettings, *, sandbox: Path | None = None, fixed_now: datetime | None = None,
                 timezone: str | None = None, user: UserProfile | None = None) -> Context:
    extra: dict[str, Any] = {}
    if settings.smtp is not None:
        extra["smtp"] = settings.smtp.model_dump()
    return Context(
        sandbox=Sandbox(sandbox or settings.sandbox),
        timezone=timezone or settings.timezone,
        user=user or settings.user,
        fixed_now=fixed_now,
        settings=extra,
    )


def local_timezone() -> str:
    """The machine's IANA zone name: $TZ, /etc/timezone, the /etc/localtime link, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    etc = Path("/etc/timezone")
    if etc.is_file():
        candidates.append(etc.read_text().strip())
    link = Path("/etc/localtime")
    if link.is_symlink():
        target = os.readlink(link)
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"
