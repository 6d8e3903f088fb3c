"""`certdesk-agent`: the agent's command line.

    certdesk-agent keys [--json]

Each command is a `Command` in `COMMANDS`: it adds its own sub-parser and runs
with the parsed arguments and a `KeyDriver`. The portal commands (enroll,
renew, unlock) will be added the same way, with a portal client next to the
driver; nothing here changes for them.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from certdesk_agent import __version__
from certdesk_agent.drivers import DRIVER_NAMES, default_driver
from certdesk_agent.drivers.base import KeyDriver
from certdesk_agent.errors import AgentError
from certdesk_agent.types import KeyInfo

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


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


COMMANDS: list[Command] = [
    Command(name="keys", help="列出已插入的 USB Key 及其中的证书", configure=_configure_keys, run=_run_keys),
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


if __name__ == "__main__":
    sys.exit(main())
