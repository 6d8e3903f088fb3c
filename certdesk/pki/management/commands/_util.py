from __future__ import annotations

from django.core.management.base import CommandError

from certdesk.pki.errors import PkiError


def command_error(exc: PkiError) -> CommandError:
    return CommandError(f"[{exc.code}] {exc.message}")
