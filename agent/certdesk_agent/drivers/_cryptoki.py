"""The two Cryptoki calls python-pkcs11 does not offer, made on the same loaded module.

- ``C_CloseAllSessions(slot)``: `Token.open(user_pin=wrong)` opens a session,
  the login fails, and python-pkcs11 raises without closing the session (it
  never made a Session object for it). That orphan stays open until the
  library is finalised; while it is a read-only one, an SO login on the token
  fails with CKR_SESSION_READ_ONLY_EXISTS. After a failed login the driver
  closes the slot's sessions with this call (it holds no others at that point).
- ``C_InitToken(slot, so_pin, label)``: only for making emulated keys on
  SoftHSM's free slot in-process (softhsm2-util would need the SO PIN on its
  command line, visible to every user of the machine).

ctypes opens the module by the same path python-pkcs11 loaded, which gives the
same library instance (the dynamic loader reference-counts it), so both see
the same sessions and tokens. Only exported symbols are used; a module that
does not export them makes these functions return None and the caller falls
back (the driver re-initialises the library instead).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

_CK_ULONG = ctypes.c_ulong
_libraries: dict[str, ctypes.CDLL | None] = {}
_lock = threading.Lock()


def _library(module: str) -> ctypes.CDLL | None:
    with _lock:
        if module not in _libraries:
            try:
                _libraries[module] = ctypes.CDLL(module)
            except OSError:
                _libraries[module] = None
        return _libraries[module]


def _function(module: str, name: str) -> Any | None:
    library = _library(module)
    if library is None:
        return None
    try:
        function = getattr(library, name)
    except AttributeError:
        return None
    return function


def close_all_sessions(module: str, slot_id: int) -> int | None:
    """C_CloseAllSessions; the CK_RV, or None when the module does not export it."""
    function = _function(module, "C_CloseAllSessions")
    if function is None:
        return None
    function.argtypes = [_CK_ULONG]
    function.restype = _CK_ULONG
    return int(function(slot_id))


def init_token(module: str, slot_id: int, *, so_pin: str, label: str) -> int | None:
    """C_InitToken (label padded to 32 bytes as the standard wants); the CK_RV or None."""
    function = _function(module, "C_InitToken")
    if function is None:
        return None
    encoded_label = label.encode("utf-8")
    if len(encoded_label) > 32:
        raise ValueError("a token label has at most 32 bytes")
    pin = so_pin.encode("utf-8")
    function.argtypes = [_CK_ULONG, ctypes.c_char_p, _CK_ULONG, ctypes.c_char_p]
    function.restype = _CK_ULONG
    return int(function(slot_id, pin, len(pin), encoded_label.ljust(32, b" ")))
