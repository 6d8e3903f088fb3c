"""Sessions the agent opened, kept on disk until their work is done.

A pairing code works once. If the agent is interrupted (crash, lost connection, key pulled)
after trading the code for a session, running the same command with the same code again must
pick the work up where it stopped, so the session token is kept here, under a name derived
from the portal and the code, until the work is done or the session expires (30 minutes).

Only the token is kept: never a PIN, never the admin PINs of an unlock. The directory and
files are private to the user (0700/0600).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_DIR_ENV = "CERTDESK_AGENT_STATE_DIR"


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA")
        if base:
            return Path(base) / "certdesk-agent"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "certdesk-agent"


def _normalised(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


@dataclass(frozen=True)
class SavedSession:
    token: str
    expires_at: datetime.datetime
    key_sn: str


class SessionStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_state_dir()

    def _path(self, portal: str, code: str) -> Path:
        name = hashlib.sha256(f"{portal}\n{_normalised(code)}".encode()).hexdigest()[:32]
        return self.directory / f"session-{name}.json"

    def load(self, portal: str, code: str) -> SavedSession | None:
        path = self._path(portal, code)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            saved = SavedSession(
                token=str(data["token"]),
                expires_at=datetime.datetime.fromisoformat(data["expires_at"]),
                key_sn=str(data["key_sn"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: start afresh
            return None
        if saved.expires_at <= datetime.datetime.now(datetime.UTC):
            path.unlink(missing_ok=True)
            return None
        return saved

    def save(self, portal: str, code: str, saved: SavedSession) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(portal, code)
        temporary = path.with_suffix(".tmp")
        body = json.dumps(
            {"token": saved.token, "expires_at": saved.expires_at.isoformat(), "key_sn": saved.key_sn}
        ).encode()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, body)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)

    def forget(self, portal: str, code: str) -> None:
        self._path(portal, code).unlink(missing_ok=True)
