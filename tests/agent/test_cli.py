"""The `certdesk-agent` command line: `keys` as a table and as JSON."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from certdesk_agent.cli import main
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver

from tests.agent.certs import ThrowawayCa, enrol
from tests.agent.softhsm import SOFTHSM_MODULE, EmulatedKey, TokenDir


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--module", SOFTHSM_MODULE, *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_keys_as_a_table(driver: Pkcs11Driver, key: EmulatedKey, ca: ThrowawayCa) -> None:
    enrol(driver, key, ca)

    code, out, err = _run("keys")

    assert (code, err) == (0, "")
    header, rule, row = out.splitlines()
    assert header.split() == ["序列号", "型号", "状态", "证书", "证书序列号", "有效期至"]
    assert set(rule) <= {"-", " "}
    assert row.startswith(f"{key.sn}  EZCA-K55  正常（剩余 6/6 次）  北京某某科技有限公司")


def test_keys_as_json(driver: Pkcs11Driver, key: EmulatedKey, ca: ThrowawayCa) -> None:
    pair, certificate = enrol(driver, key, ca)

    code, out, _err = _run("keys", "--json")

    assert code == 0
    (listed,) = json.loads(out)["keys"]
    assert {k: listed[k] for k in ("sn", "model", "driver", "locked", "retries_left", "retries_max")} == {
        "sn": key.sn,
        "model": "EZCA-K55",
        "driver": "pkcs11",
        "locked": False,
        "retries_left": 6,
        "retries_max": 6,
    }
    user, authority = listed["certificates"]
    assert (user["serial"], user["key_id"], user["is_ca"]) == (
        format(certificate.serial_number, "x"),
        pair.key_id.hex(),
        False,
    )
    assert authority["is_ca"] is True


def test_no_keys(token_dir: TokenDir) -> None:
    assert _run("keys") == (0, "未检测到 USB Key：请插入证书盘（并确认驱动已安装）。\n", "")
    code, out, _err = _run("keys", "--json")
    assert (code, json.loads(out)) == (0, {"keys": []})


def test_errors_are_printed_in_chinese_with_a_non_zero_exit(token_dir: TokenDir) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--module", "/nonexistent/vendor.so", "keys"], out=out, err=err)
    assert code == 1
    assert err.getvalue().startswith("错误：无法加载 USB Key 驱动")


def test_the_installed_entry_point(token_dir: TokenDir, key: EmulatedKey) -> None:
    # A separate process (its own SoftHSM instance) reading SOFTHSM2_CONF from the environment.
    result = subprocess.run(
        [sys.executable, "-m", "certdesk_agent", "keys", "--json"], capture_output=True, text=True, check=True
    )
    assert [k["sn"] for k in json.loads(result.stdout)["keys"]] == [key.sn]
