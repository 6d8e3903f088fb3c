"""`certdesk-agent`: the agent's command line.

    certdesk-agent keys [--json]
    certdesk-agent enroll --code ABCD-EFGH [--sn SN] [--pin PIN] [--portal URL]
    certdesk-agent renew  --code ABCD-EFGH [--sn SN] [--pin PIN] [--portal URL]
    certdesk-agent unlock --code ABCD-EFGH [--sn SN] [--new-pin PIN] [--portal URL]
    certdesk-agent serve  [--port 17800] [--portal URL]

Each command is a `Command` in `COMMANDS`: it adds its own sub-parser and runs
with the parsed arguments and a `KeyDriver`; the portal commands make their
portal client from `--portal` (or CERTDESK_PORTAL). The work itself is in
`flows` (enroll, renew, unlock) and `bridge` (serve).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from certdesk_agent import __version__, bridge, flows
from certdesk_agent.drivers import DRIVER_NAMES, default_driver
from certdesk_agent.drivers.base import KeyDriver
from certdesk_agent.errors import AgentError
from certdesk_agent.portal import DEFAULT_PORTAL, PORTAL_ENV, PortalClient, portal_origin, portal_url
from certdesk_agent.state import SessionStore
from certdesk_agent.types import KeyInfo

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, KeyDriver, TextIO], int]


# ---- keys ---------------------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _state(key: KeyInfo) -> str:
    if key.locked:
        return "已锁定"
    if key.retries_left is None:
        return "正常"
    return (
        f"正常（剩余 {key.retries_left}/{key.retries_max} 次）"
        if key.retries_max
        else f"正常（剩余 {key.retries_left} 次）"
    )


def keys_table(keys: Sequence[KeyInfo]) -> str:
    """The keys as a table: one row per certificate (a key without one gets one row)."""
    header = ("序列号", "型号", "状态", "证书", "证书序列号", "有效期至")
    rows: list[tuple[str, ...]] = []
    for key in keys:
        certificates = key.user_certificates
        first = (key.sn, key.model, _state(key))
        if not certificates:
            rows.append((*first, "（无证书）", "", ""))
        for index, cert in enumerate(certificates):
            lead = first if index == 0 else ("", "", "")
            rows.append((*lead, cert.common_name, cert.serial_hex, cert.not_after.strftime("%Y-%m-%d")))
    widths = [max(_width(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _configure_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="输出 JSON（供程序读取）")


def _run_keys(args: argparse.Namespace, driver: KeyDriver, out: TextIO) -> int:
    keys = driver.list_keys()
    if args.json:
        json.dump({"keys": [key.to_dict() for key in keys]}, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif not keys:
        out.write("未检测到 USB Key：请插入证书盘（并确认驱动已安装）。\n")
    else:
        out.write(keys_table(keys) + "\n")
    return EXIT_OK


# ---- enroll, renew, unlock ----------------------------------------------------------------------


def _ask_secret(prompt: str) -> str:
    return getpass.getpass(prompt)


def _console(out: TextIO) -> flows.Console:
    # Looked up at run time, so a test (or an embedding program) can replace the prompt.
    return flows.Console(out=out, ask_secret=lambda prompt: _ask_secret(prompt))


def _pairing_code(value: str) -> str:
    code = value.strip().upper().replace(" ", "")
    if not re.fullmatch(r"[A-Z0-9]{4}-?[A-Z0-9]{4}", code):
        raise argparse.ArgumentTypeError("配对码应为 8 位字母或数字，如 ABCD-EFGH（见订单页面）")
    return code


def _portal_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portal", help=f"证书服务平台地址（默认取环境变量 {PORTAL_ENV}，否则 {DEFAULT_PORTAL}）")


def _key_work_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", required=True, type=_pairing_code, help="订单页面上的配对码，如 ABCD-EFGH")
    parser.add_argument("--sn", help="USB Key 序列号（只插着一把 Key 时可省略）")
    _portal_option(parser)


def _configure_certificates(parser: argparse.ArgumentParser) -> None:
    _key_work_options(parser)
    parser.add_argument("--pin", help="USB Key 的 PIN 码（省略则提示输入；写在命令行上会被本机其他用户看到）")


def _run_certificates(args: argparse.Namespace, driver: KeyDriver, out: TextIO) -> int:
    return flows.certificates_run(
        driver=driver,
        portal=PortalClient(args.portal),
        store=SessionStore(),
        code=args.code,
        sn=args.sn,
        pin=args.pin,
        console=_console(out),
    )


def _configure_unlock(parser: argparse.ArgumentParser) -> None:
    _key_work_options(parser)
    parser.add_argument("--new-pin", help="要设置的新 PIN 码（省略则提示输入两次）")


def _run_unlock(args: argparse.Namespace, driver: KeyDriver, out: TextIO) -> int:
    return flows.unlock_run(
        driver=driver,
        portal=PortalClient(args.portal),
        store=SessionStore(),
        code=args.code,
        sn=args.sn,
        new_pin=args.new_pin,
        console=_console(out),
    )


# ---- serve --------------------------------------------------------------------------------------


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=bridge.DEFAULT_PORT, help=f"本机端口（默认 {bridge.DEFAULT_PORT}）")
    _portal_option(parser)


def _run_serve(args: argparse.Namespace, driver: KeyDriver, out: TextIO) -> int:
    origin = portal_origin(portal_url(args.portal))
    try:
        server = bridge.bridge_server(driver=driver, origin=origin, port=args.port)
    except OSError as exc:
        raise AgentError(f"无法在本机端口 {args.port} 上启动证书助手：{exc.strerror or exc}。") from None
    out.write(
        f"证书助手已在 http://{bridge.LOOPBACK}:{server.port} 运行，只接受 {origin} 页面的请求。按 Ctrl+C 退出。\n"
    )
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


COMMANDS: list[Command] = [
    Command(name="keys", help="列出已插入的 USB Key 及其中的证书", configure=_configure_keys, run=_run_keys),
    Command(
        name="enroll",
        help="把订单的证书写入这把 USB Key（制证站写新 Key，或按配对码写入证书）",
        configure=_configure_certificates,
        run=_run_certificates,
    ),
    Command(
        name="renew",
        help="把证书更新或变更后的新证书下载到原 USB Key",
        configure=_configure_certificates,
        run=_run_certificates,
    ),
    Command(name="unlock", help="在线解锁：重置忘记或被锁定的 PIN 码", configure=_configure_unlock, run=_run_unlock),
    Command(
        name="serve", help="在本机为订单页面提供 Key 检测（127.0.0.1）", configure=_configure_serve, run=_run_serve
    ),
]


# ---- entry point --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certdesk-agent", description="证书助手：USB Key（证书盘）的本地代理")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--driver", choices=DRIVER_NAMES, help="密钥接口（默认 pkcs11）")
    parser.add_argument("--module", help="PKCS#11 模块路径（默认取 CERTDESK_AGENT_PKCS11_MODULE 或 SoftHSM2）")
    parser.add_argument(
        "--sn-from", choices=("label", "serial"), help="USB Key 序列号取自令牌标签或令牌序列号（默认 label）"
    )
    sub = parser.add_subparsers(dest="command", metavar="命令", required=True)
    for command in COMMANDS:
        command.configure(sub.add_parser(command.name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    command = next(c for c in COMMANDS if c.name == args.command)
    try:
        driver = default_driver(args.driver, module=args.module, sn_from=args.sn_from)
        return command.run(args, driver, out)
    except AgentError as exc:
        err.write(f"错误：{exc.message}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        # Ctrl+C mid-way is safe: the same command with the same code picks the work up again.
        err.write("\n已中断。重新运行同一命令即可继续，已完成的步骤不会重复。\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
