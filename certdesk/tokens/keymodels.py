"""Key models recognised by the SN prefix, and how a locked key of each model is unlocked.

The manual (在线解锁): a key whose SN starts with 55 or 56 has its PIN reset
online through the agent; a key whose SN starts with 11 is unlocked by a support
engineer over remote assistance (QQ). The agent keeps the same prefixes for
showing model names (certdesk_agent.types.KEY_MODELS); this table is the one the
server decides with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UnlockMethod = Literal["online", "remote", "unknown"]


@dataclass(frozen=True)
class KeyModelInfo:
    prefix: str
    model: str
    vendor: str
    unlock_method: UnlockMethod


KEY_MODELS: dict[str, KeyModelInfo] = {
    "55": KeyModelInfo(prefix="55", model="EZCA-K55", vendor="东方中讯", unlock_method="online"),
    "56": KeyModelInfo(prefix="56", model="EZCA-K56", vendor="东方中讯", unlock_method="online"),
    "11": KeyModelInfo(prefix="11", model="EZCA-K11", vendor="东方中讯", unlock_method="remote"),
}


def key_model_info(sn: str) -> KeyModelInfo | None:
    return KEY_MODELS.get(str(sn).strip()[:2])


def key_unlock_method(sn: str) -> UnlockMethod:
    """ "online" (55/56: the agent resets the PIN), "remote" (11: support by remote assistance),
    or "unknown" (a key this CA did not issue, or a typo)."""
    info = key_model_info(sn)
    return info.unlock_method if info is not None else "unknown"
