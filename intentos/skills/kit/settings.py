"""A skill's section of the context settings: `<skill>: {...}` in the config file, or given by a test."""

from __future__ import annotations

from typing import Any

from intentos.app import Context


def section(ctx: Context, skill: str, *keys: str) -> dict[str, Any]:
    """`ctx.settings[skill][keys[0]]...` as a fresh dict; empty where any level is missing or not a mapping."""
    found: Any = ctx.settings.get(skill, {})
    for key in keys:
        found = found.get(key, {}) if isinstance(found, dict) else {}
    return dict(found) if isinstance(found, dict) else {}
