"""Knobs of the agent API, with defaults; override in settings (or the environment via settings)."""

from __future__ import annotations

from django.conf import settings


def open_max_failures() -> int:
    """Refused session openings an address may make in the window before it must wait."""
    return int(getattr(settings, "AGENT_API_OPEN_MAX_FAILURES", 10))


def open_window_seconds() -> int:
    return int(getattr(settings, "AGENT_API_OPEN_WINDOW_SECONDS", 15 * 60))


# Bodies are a PEM or two at most; anything bigger is not from the agent.
MAX_BODY_BYTES = 64 * 1024
