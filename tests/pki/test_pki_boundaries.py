"""The CA engine stands apart from the RA: it imports no RA app, only shared helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import certdesk.pki

ALLOWED_CERTDESK = {"certdesk.pki", "certdesk.core"}
PKI_DIR = Path(certdesk.pki.__file__).parent


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names if node.module == "certdesk"]
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            names.append("<relative import leaving certdesk.pki>")
    return names


def test_pki_imports_no_ra_app() -> None:
    offending = []
    files = sorted(PKI_DIR.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            if name.startswith("<") or (
                (name == "certdesk" or name.startswith("certdesk."))
                and not any(name == ok or name.startswith(ok + ".") for ok in ALLOWED_CERTDESK)
            ):
                offending.append(f"{path.relative_to(PKI_DIR.parent.parent)}: {name}")
    assert offending == [], "certdesk.pki must not import RA apps:\n" + "\n".join(offending)


def test_scanner_catches_an_ra_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from certdesk.orders.models import Order\nimport certdesk.accounts\nfrom certdesk import catalog\n"
    )
    assert _imports(sample) == ["certdesk.orders.models", "certdesk.accounts", "certdesk", "certdesk.catalog"]
