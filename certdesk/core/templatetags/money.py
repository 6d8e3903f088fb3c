from django import template

from certdesk.core.money import fen_to_yuan_text

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    return fen_to_yuan_text(int(fen or 0))
