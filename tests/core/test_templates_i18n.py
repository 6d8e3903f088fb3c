"""Every user-visible text in the templates goes through gettext.

The source language is Chinese, so a CJK character left in a template outside a
`{% translate %}` tag or a `{% blocktranslate %}` block is a text an English
translation could never reach.  Comments, <script> and <style> are not text.
"""

from __future__ import annotations

import re
from pathlib import Path

import certdesk

TEMPLATE_ROOT = Path(certdesk.__file__).resolve().parent

CJK = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")

# Removed before scanning, in this order.  Each match is replaced by as many
# newlines as it spans, so line numbers stay those of the file.
NOT_TEXT = [
    re.compile(r"\{%\s*comment\b.*?%\}.*?\{%\s*endcomment\s*%\}", re.DOTALL),
    re.compile(r"\{#.*?#\}", re.DOTALL),
    re.compile(r"<script\b.*?</script\s*>", re.DOTALL | re.IGNORECASE),
    re.compile(r"<style\b.*?</style\s*>", re.DOTALL | re.IGNORECASE),
    re.compile(r"\{%\s*blocktrans(?:late)?\b.*?%\}.*?\{%\s*endblocktrans(?:late)?\s*%\}", re.DOTALL),
    re.compile(r"\{%\s*trans(?:late)?\s.*?%\}", re.DOTALL),
]

# Templates not yet converted.  Should stay empty; add a path (relative to
# certdesk/) only with a comment saying why.
ALLOWED_UNTRANSLATED: set[str] = set()


def _blank(match: re.Match[str]) -> str:
    return "\n" * match.group().count("\n")


def untranslated_lines(source: str) -> list[tuple[int, str]]:
    for pattern in NOT_TEXT:
        source = pattern.sub(_blank, source)
    return [(number, line.strip()) for number, line in enumerate(source.splitlines(), 1) if CJK.search(line)]


def test_scanner_skips_translated_text() -> None:
    source = (
        '{% load i18n %}{# 注释 #}<h1>{% translate "标题" %}</h1>\n'
        "{% blocktranslate with n=order.number trimmed %}订单\n{{ n }}{% endblocktranslate %}\n"
        "<script>alert('你好')</script><style>p::after { content: '。' }</style>\n"
        "{% comment %}\n说明\n{% endcomment %}\n"
        "<p>未翻译</p>\n"
        '<input placeholder="{% translate \'搜索\' %}" title="提示">\n'
    )
    assert untranslated_lines(source) == [(8, "<p>未翻译</p>"), (9, '<input placeholder="" title="提示">')]


def test_templates_have_no_literal_chinese() -> None:
    templates = sorted(TEMPLATE_ROOT.rglob("*.html"))
    assert templates, f"no templates found under {TEMPLATE_ROOT}"
    problems = []
    for path in templates:
        relative = path.relative_to(TEMPLATE_ROOT).as_posix()
        if relative in ALLOWED_UNTRANSLATED:
            continue
        for number, line in untranslated_lines(path.read_text(encoding="utf-8")):
            problems.append(f"certdesk/{relative}:{number}: {line}")
    assert not problems, "text not passed through gettext:\n" + "\n".join(problems)


def test_allowed_untranslated_still_exist() -> None:
    missing = [name for name in ALLOWED_UNTRANSLATED if not (TEMPLATE_ROOT / name).is_file()]
    assert not missing, f"stale entries in ALLOWED_UNTRANSLATED: {missing}"
