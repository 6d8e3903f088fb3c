"""Documents benchmark: the application-form PDF and the validation of a 3 MB upload, ms each.

    .venv/bin/python bench/documents.py [--rounds 10] [--json FILE]

Runs in one fresh process with the test settings (no database needed), as
an app server worker would: the PDF is rendered by the order views, uploads
are validated in the upload view. Baselines in the same process: for the
PDF, rendering its HTML (the template alone) and a one-line PDF with the
same CJK font (WeasyPrint's fixed cost); for uploads, Pillow decoding the
same file (what any image check must at least do).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Report, Table, Target, child_main, run_children

MAX_UPLOAD = 3 * 1024 * 1024


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    import django

    django.setup()


def _timed(fn: Any, rounds: int) -> dict[str, float]:
    fn()  # warm: fonts, templates, codecs
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"p50": statistics.median(times), "max": max(times)}


def _photo(fmt: str, limit: int) -> bytes:
    """A scan-like image (gradient, text-like stripes, noise) as large as fits under `limit` bytes."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(7)

    def make(width: int) -> bytes:
        height = width * 4 // 3
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for y in range(0, height, 24):
            draw.rectangle([40, y, 40 + rng.randrange(width // 2, width - 80), y + 8], fill=(30, 30, 30))
        noise = Image.effect_noise((width, height), 48).convert("RGB")
        image = Image.blend(image, noise, 0.35)
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, quality=92) if fmt == "JPEG" else image.save(buffer, format=fmt)
        return buffer.getvalue()

    low, high = 200, 4000
    best = make(low)
    while high - low > 16:
        mid = (low + high) // 2
        data = make(mid)
        if len(data) <= limit:
            low, best = mid, data
        else:
            high = mid
    return best


def child_images(work: Path) -> dict[str, Any]:
    """The test uploads, made in their own process so their making does not count in the measured RSS."""
    for fmt in ("JPEG", "PNG"):
        (work / f"scan.{fmt.lower()}").write_bytes(_photo(fmt, MAX_UPLOAD - 4096))
    return {}


def child_run(work: Path, rounds: int) -> dict[str, Any]:
    _django()
    from PIL import Image
    from weasyprint import HTML

    from certdesk.core.choices import BusinessType
    from certdesk.materials.validation import upload_image_validate
    from certdesk.orders.application_form import (
        ApplicationFormData,
        application_form_render_html,
        application_form_render_pdf,
    )

    data = ApplicationFormData(
        order_number="20261127000123",
        business_type=BusinessType.NEW,
        certificate_type_name="重庆公共资源交易机构证书",
        years=2,
        org_name="重庆东方测试有限公司",
        legal_rep_name="张三",
        legal_rep_mobile="13500000000",
        agent_name="李四",
        agent_mobile="13600000000",
        agent_email="agent@example.com",
        shipping_address="重庆市渝中区测试路1号（李四 13600000000）",
        org_uscc="91110000600037341L",
        legal_rep_id_number="360426199101010071",
        agent_id_number="11010519491231002X",
        taxpayer_id="91110000600037341L",
        invoice_info="普通电子发票：重庆东方测试有限公司 91110000600037341L\n接收邮箱：invoice@example.com",
        project_region="重庆",
        project_category="公共资源交易",
        project_name="重庆市公共资源交易中心",
    )
    out: dict[str, Any] = {}
    pdf = application_form_render_pdf(data=data)
    out["pdf_bytes"] = len(pdf)
    out["pdf"] = _timed(lambda: application_form_render_pdf(data=data), rounds)
    out["html"] = _timed(lambda: application_form_render_html(data=data), rounds)
    minimal = (
        "<html><body style=\"font-family: 'WenQuanYi Micro Hei', 'Noto Sans CJK SC'\">数字证书申请表</body></html>"
    )
    out["pdf_minimal"] = _timed(lambda: HTML(string=minimal).write_pdf(), rounds)
    for fmt, name in (("JPEG", "scan.jpg"), ("PNG", "scan.png")):
        raw = (work / f"scan.{fmt.lower()}").read_bytes()
        with Image.open(io.BytesIO(raw)) as probe:
            size = probe.size
        validated = upload_image_validate(data=raw, filename=name)
        out[fmt] = {
            "bytes": len(raw),
            "pixels": size,
            "stored_bytes": validated.size,
            "validate": _timed(lambda raw=raw, name=name: upload_image_validate(data=raw, filename=name), rounds),
            "decode": _timed(lambda raw=raw: Image.open(io.BytesIO(raw)).load(), rounds),
        }
    return out


CHILDREN = {
    "images": lambda a: child_images(Path(a.work)),
    "run": lambda a: child_run(Path(a.work), a.rounds),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--work")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.child:
        child_main(CHILDREN, args)
        return
    began = time.time()
    report = Report("Documents benchmark (bench/documents.py)", "make bench  # or: .venv/bin/python bench/documents.py")
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-documents-") as work:
        run_children(__file__, "images", work=work)
        r = run_children(__file__, "run", work=work, rounds=args.rounds)[0]
    table = Table(
        f"Application form and uploads, one app-server-like process, {args.rounds} rounds each (median, slowest)",
        ["operation", "median", "slowest", "baseline", "baseline median", "÷ baseline", "note"],
    )
    table.add(
        "application-form PDF (数字证书申请表)",
        f"{r['pdf']['p50']:.0f} ms",
        f"{r['pdf']['max']:.0f} ms",
        "one-line PDF, same font",
        f"{r['pdf_minimal']['p50']:.0f} ms",
        f"{r['pdf']['p50'] / r['pdf_minimal']['p50']:.1f}×",
        f"{r['pdf_bytes'] / 1024:.0f} KiB, CJK font subset embedded; its HTML alone: {r['html']['p50']:.1f} ms",
    )
    for fmt in ("JPEG", "PNG"):
        u = r[fmt]
        table.add(
            f"validate a {u['bytes'] / 2**20:.2f} MiB {fmt} upload",
            f"{u['validate']['p50']:.0f} ms",
            f"{u['validate']['max']:.0f} ms",
            "Pillow decode alone",
            f"{u['decode']['p50']:.0f} ms",
            f"{u['validate']['p50'] / u['decode']['p50']:.1f}×",
            f"{u['pixels'][0]}×{u['pixels'][1]} px; sniff, structure walk, decode, re-encode"
            f" → {u['stored_bytes'] / 2**20:.2f} MiB stored",
        )
    table.notes = [f"Peak RSS of the process: {r['peak_rss_mb']:.0f} MB (in production: a gunicorn worker)."]
    report.tables.append(table)
    report.targets.append(
        Target(
            "app server RSS rendering PDFs and validating 3 MB uploads",
            "≤ 300 MB per process",
            f"{r['peak_rss_mb']:.0f} MB",
            r["peak_rss_mb"] <= 300,
        )
    )
    report.seconds = time.time() - began
    report.print()
    report.write_json(args.json)


if __name__ == "__main__":
    main()
