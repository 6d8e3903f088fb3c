"""Personal data on pages: `{% load pii %}` then `{{ number|mask_id }}` → `500103********0017`."""

from django import template

from certdesk.core.validators import mask_resident_id

register = template.Library()


@register.filter
def mask_id(number: str | None) -> str:
    """A resident ID number with the birth date and sequence hidden (`core.validators.mask_resident_id`)."""
    return mask_resident_id(str(number)) if number else ""
