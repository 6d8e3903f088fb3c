"""Make emulated USB keys (SoftHSM2 tokens) for the demo, and put them into stock.

    python manage.py tokens_make_demo 3 --prefix 55
    python manage.py tokens_make_demo 3 --prefix 55 --ensure   # up to 3 in stock (idempotent)

Each key: a SoftHSM token in TOKENS_DEMO_DIR (default var/usbkeys, with its
own softhsm2.conf) whose label is the SN (prefix + 10 digits; SoftHSM picks the
token serial itself), a random administrator PIN that only the inventory knows
(sealed), the demo user PIN (printed), and the emulated firmware retry counter.

The tokens are made by a child process (`python -m certdesk_agent.emulator`)
with SOFTHSM2_CONF pointing at the demo directory: SoftHSM reads that variable
once per process, and this process may use SoftHSM for something else. The
PINs go to the child on stdin, not on its command line.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from certdesk.core.errors import DomainError
from certdesk.tokens import conf
from certdesk.tokens.keymodels import key_model_info
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.services import so_pin_generate, usb_key_create

SN_DIGITS = 10


def _new_sn(prefix: str, taken: set[str]) -> str:
    while True:
        sn = prefix + "".join(secrets.choice("0123456789") for _ in range(SN_DIGITS))
        if sn not in taken and not UsbKey.objects.filter(sn=sn).exists():
            taken.add(sn)
            return sn


class Command(BaseCommand):
    help = "Make N emulated USB keys (SoftHSM2 tokens) and put them into stock (demo mode only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int, help="how many keys")
        parser.add_argument("--prefix", default="55", help="SN prefix: 55/56 (online unlock) or 11 (remote assistance)")
        parser.add_argument("--max-retries", type=int, default=None, help="wrong PINs before a key locks")
        parser.add_argument(
            "--ensure",
            action="store_true",
            help="only make as many as needed to have N emulated keys with this prefix in stock (for `make demo`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("emulated keys are only made in demo mode (CERTDESK_DEMO=true)")
        count: int = options["count"]
        prefix: str = options["prefix"]
        max_retries: int = options["max_retries"] or conf.pin_max_retries()
        if not 1 <= count <= 100:
            raise CommandError("count must be between 1 and 100")
        if len(prefix) != 2 or not prefix.isdigit():
            raise CommandError("the prefix is the two digits the SN starts with, e.g. 55")
        if max_retries < 1:
            raise CommandError("--max-retries must be at least 1")
        if options["ensure"]:
            have = UsbKey.objects.filter(emulated=True, status=UsbKeyStatus.IN_STOCK, sn__startswith=prefix).count()
            if have >= count:
                self.stdout.write(f"  {have} emulated USB keys with prefix {prefix} already in stock")
                return
            count -= have
        try:
            from certdesk_agent.emulator import emulated_key_delete, softhsm_conf_write
        except ImportError:
            raise CommandError("certdesk-agent is not installed: pip install -e ./agent") from None

        directory = conf.demo_dir()
        softhsm_conf = softhsm_conf_write(directory)
        user_pin = conf.demo_user_pin()
        taken: set[str] = set()
        so_pins = {_new_sn(prefix, taken): so_pin_generate() for _ in range(count)}
        specs = [
            {"sn": sn, "so_pin": so_pin, "user_pin": user_pin, "max_retries": max_retries}
            for sn, so_pin in so_pins.items()
        ]
        result = subprocess.run(
            [sys.executable, "-m", "certdesk_agent.emulator"],
            input=json.dumps({"module": conf.pkcs11_module(), "keys": specs}),
            env={**os.environ, "SOFTHSM2_CONF": str(softhsm_conf)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            answer = json.loads(result.stdout or "{}")
        except json.JSONDecodeError:
            answer = {"error": (result.stderr or result.stdout).strip()[-500:]}
        created: list[dict[str, str]] = answer.get("created", [])

        def roll_back() -> None:
            for item in created:
                emulated_key_delete(serial=item["serial"], conf=softhsm_conf)

        if result.returncode != 0 or "error" in answer:
            roll_back()
            raise CommandError(f"making the emulated keys failed: {answer.get('error', 'unknown error')}")
        try:
            with transaction.atomic():
                keys = [
                    usb_key_create(
                        sn=item["sn"],
                        so_pin=so_pins[item["sn"]],
                        initial_user_pin=user_pin,
                        emulated=True,
                        actor="tokens_make_demo",
                    )
                    for item in created
                ]
        except DomainError as exc:
            roll_back()
            raise CommandError(f"the keys could not be stored: {exc.message}") from None
        except BaseException:
            roll_back()
            raise

        info = key_model_info(prefix)
        unlock = {"online": "在线解锁", "remote": "远程协助"}.get(info.unlock_method, "未知") if info else "未知"
        self.stdout.write(f"  {len(keys)} emulated USB keys in {directory} ({unlock}):")
        for key in keys:
            self.stdout.write(f"    {key.sn}  {key.model}  user PIN {user_pin}")
        self.stdout.write(f"  see them with: SOFTHSM2_CONF={softhsm_conf} certdesk-agent keys")
