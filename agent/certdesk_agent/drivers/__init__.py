"""Key drivers. `default_driver()` is what the CLI uses; add a driver here (SKF next)."""

from __future__ import annotations

import os

from certdesk_agent.drivers.base import KeyDriver

DRIVER_ENV = "CERTDESK_AGENT_DRIVER"
DRIVER_NAMES = ("pkcs11",)


def default_driver(name: str | None = None, *, module: str | None = None, sn_from: str | None = None) -> KeyDriver:
    """The driver called `name` (default: CERTDESK_AGENT_DRIVER, else pkcs11)."""
    name = name or os.environ.get(DRIVER_ENV) or "pkcs11"
    if name == "pkcs11":
        from certdesk_agent.drivers.pkcs11 import Pkcs11Driver

        return Pkcs11Driver(module=module, sn_from=sn_from)
    raise ValueError(f"unknown key driver {name!r}; choose one of {', '.join(DRIVER_NAMES)}")


__all__ = ["DRIVER_NAMES", "KeyDriver", "default_driver"]
