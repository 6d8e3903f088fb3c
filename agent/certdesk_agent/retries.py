"""The emulated firmware retry counter of a SoftHSM key.

A real USB key counts wrong user PINs in its firmware and locks after a few
(typically 6); SoftHSM never locks a PIN (by design: 200 wrong tries still say
CKR_PIN_INCORRECT). So an emulated key carries its counter on the token, where
firmware would keep it, and the PKCS#11 driver honours it:

- one data object: CKO_DATA, label ``certdesk-pin-retries``, CKA_APPLICATION
  ``certdesk-agent``, CKA_VALUE ``b"<max>,<left>"`` (ASCII), e.g. ``b"6,6"``;
- **public** (CKA_PRIVATE false) and a token object: it must be readable before
  any login (to say "locked, 0 tries left" without asking for a PIN) and
  visible to the Security Officer, who never sees private objects;
- the count is written in *any* read-write session. It has to be: a wrong PIN
  is counted exactly when nobody can log in, and PKCS#11 lets a read-write
  public session create and destroy public objects (the user and SO sessions
  can too, for the reset);
- SoftHSM makes CKA_VALUE of a data object read-only after creation
  (CKR_ATTRIBUTE_READ_ONLY, whatever CKA_MODIFIABLE says), so a write *replaces*
  the object: the new one is created first, then the old one destroyed. If the
  process dies between the two, two objects remain; a reader takes the one
  with the fewest tries left (an interrupted write never grants more tries than
  the key had), and the next write removes the extras;
- an unreadable value counts as locked (fail closed); the SO unlock rewrites it.

The driver counts the attempt *before* it tries the PIN (as card firmware does,
so pulling the key mid-verify cannot save a try) and sets the count back to the
maximum after a successful login; the SO unlock also sets it back.

What this cannot emulate: a program on the PC can rewrite a public object
without a PIN, which a key's firmware would never allow. It is a test and demo
stand-in for the firmware, not a security boundary; keys without the object
(real hardware) are left to their own firmware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pkcs11 import Attribute, ObjectClass

RETRY_COUNTER_LABEL = "certdesk-pin-retries"
RETRY_COUNTER_APPLICATION = "certdesk-agent"
DEFAULT_MAX_RETRIES = 6


@dataclass(frozen=True)
class RetryState:
    max: int
    left: int

    @property
    def locked(self) -> bool:
        return self.left <= 0

    def counted(self) -> RetryState:
        """One more attempt used."""
        return RetryState(max=self.max, left=max(0, self.left - 1))

    def full(self) -> RetryState:
        return RetryState(max=self.max, left=self.max)

    def encode(self) -> bytes:
        return f"{self.max},{self.left}".encode("ascii")

    @classmethod
    def decode(cls, value: bytes) -> RetryState:
        try:
            max_text, left_text = bytes(value).decode("ascii").split(",")
            maximum, left = int(max_text), int(left_text)
        except (UnicodeDecodeError, ValueError):
            return cls(max=DEFAULT_MAX_RETRIES, left=0)
        if maximum <= 0:
            maximum = DEFAULT_MAX_RETRIES
        return cls(max=maximum, left=min(max(left, 0), maximum))


def _counter_objects(session: Any) -> list[Any]:
    return list(
        session.get_objects(
            {Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.LABEL: RETRY_COUNTER_LABEL}
        )
    )


def retry_counter_read(session: Any) -> RetryState | None:
    """The key's retry state, or None when the key has no emulated counter (real hardware)."""
    states = [RetryState.decode(obj[Attribute.VALUE]) for obj in _counter_objects(session)]
    if not states:
        return None
    return min(states, key=lambda state: state.left)


def retry_counter_write(session: Any, state: RetryState) -> None:
    """Store `state` (needs a read-write session; no login required)."""
    old = _counter_objects(session)
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.MODIFIABLE: False,
            Attribute.LABEL: RETRY_COUNTER_LABEL,
            Attribute.APPLICATION: RETRY_COUNTER_APPLICATION,
            Attribute.VALUE: state.encode(),
        }
    )
    for obj in old:
        obj.destroy()
