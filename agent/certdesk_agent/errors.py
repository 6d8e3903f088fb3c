"""What can go wrong at the key, as typed exceptions.

Every error has a stable machine `code` (for the portal API and tests) and a
Chinese `message` that tells the person at the PC what happened and what to do;
the CLI prints the message, the local bridge will return both.
"""

from __future__ import annotations


class AgentError(Exception):
    code = "agent_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DriverUnavailable(AgentError):
    """The PKCS#11 module cannot be loaded or initialised."""

    code = "driver_unavailable"

    def __init__(self, module: str, detail: str = "") -> None:
        super().__init__(
            f"无法加载 USB Key 驱动（PKCS#11 模块 {module}）{('：' + detail) if detail else ''}。"
            "请确认已安装证书盘驱动，或用环境变量 CERTDESK_AGENT_PKCS11_MODULE 指定驱动路径。"
        )
        self.module = module


class NoKeyPresent(AgentError):
    code = "no_key"

    def __init__(self) -> None:
        super().__init__("未检测到 USB Key：请插入证书盘（并确认驱动已安装）后重试。")


class MultipleKeysPresent(AgentError):
    code = "multiple_keys"

    def __init__(self, sns: list[str]) -> None:
        super().__init__(f"检测到多把 USB Key（{'、'.join(sns)}）：请只插入要办理的那一把，或指定序列号（--sn）。")
        self.sns = sns


class KeyNotFound(AgentError):
    code = "key_not_found"

    def __init__(self, sn: str) -> None:
        super().__init__(f"未找到序列号为 {sn} 的 USB Key：请确认插入的是订单上的这把证书盘。")
        self.sn = sn


class WrongPin(AgentError):
    """The user PIN was wrong; `tries_left` is None when the key does not say."""

    code = "wrong_pin"

    def __init__(self, tries_left: int | None) -> None:
        if tries_left is None:
            message = "PIN 码错误，请重新输入。多次输错会锁定 USB Key。"
        else:
            message = f"PIN 码错误，还可以尝试 {tries_left} 次；次数用完 USB Key 将被锁定。"
        super().__init__(message)
        self.tries_left = tries_left


class KeyLocked(AgentError):
    code = "key_locked"

    def __init__(self, sn: str, *, just_now: bool = False) -> None:
        first = "PIN 码错误次数已达上限，" if just_now else ""
        super().__init__(f"{first}USB Key {sn} 已锁定。请在自助办理平台办理“在线解锁”后设置新的 PIN 码。")
        self.sn = sn
        self.just_now = just_now


class PinPolicyError(AgentError):
    code = "pin_policy"


class AdminPinRejected(AgentError):
    """The SO (administrator) PIN handed out by the portal was refused by the key."""

    code = "admin_pin_rejected"

    def __init__(self, sn: str) -> None:
        super().__init__(f"USB Key {sn} 拒绝了管理员 PIN，解锁没有执行。请不要重试，联系客服远程协助。")
        self.sn = sn


class AdminPinLocked(AgentError):
    code = "admin_pin_locked"

    def __init__(self, sn: str) -> None:
        super().__init__(
            f"USB Key {sn} 的管理员 PIN 已锁定，无法解锁（这是证书盘的安全设计）。请办理“证书补办”更换新盘。"
        )
        self.sn = sn


class KeyPairNotFound(AgentError):
    code = "key_pair_not_found"


class KeyCannotSign(AgentError):
    code = "key_cannot_sign"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"密钥 {key_id} 是加密密钥，不能用来签名证书请求。")
        self.key_id = key_id


class DeleteRefused(AgentError):
    code = "delete_refused"


class TokenError(AgentError):
    """Any other failure reported by the key or its driver."""

    code = "token_error"

    def __init__(self, detail: str) -> None:
        super().__init__(f"USB Key 操作失败（{detail}）。请重新插拔证书盘后重试；仍不行请联系客服。")
        self.detail = detail


# ---- the portal ---------------------------------------------------------------------------------


class PortalUnreachable(AgentError):
    """No answer from the portal (network, DNS, TLS, timeout). Every step is safe to run again."""

    code = "portal_unreachable"

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"无法连接证书服务平台（{url}）：{detail}。请检查网络后重新运行同一命令，已完成的步骤不会重复。"
        )
        self.url = url
        self.detail = detail


class PortalError(AgentError):
    """The portal refused a request; `code` and the message are the portal's own."""

    def __init__(self, *, status: int, code: str, message: str) -> None:
        super().__init__(f"证书服务平台拒绝了请求：{message}")
        self.status = status
        self.code = code
        self.portal_message = message


class PortalConfigError(AgentError):
    code = "portal_config"


class WrongCommand(AgentError):
    """The pairing code is for another kind of work than the command that was run."""

    code = "wrong_command"


class OrderNotWaiting(AgentError):
    code = "order_not_waiting"


class UnlockFailed(AgentError):
    """The unlock on the key did not complete; the portal has handed the order to support."""

    code = "unlock_failed"
