"""Choice labels on pages: `{% load choices %}` then `{{ order|display:"status" }}` → `待审核`.

It shows what `order.get_status_display` shows, but that method builds a dict of
the field's choices on every call (hashing each lazy label, a translation lookup
apiece): a list page paid it for every cell. Here each field's value → label
table is built once; a call is one dict lookup and one translation of the label.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Model

register = template.Library()

_LABELS: dict[tuple[type[Model], str], tuple[str, dict[Any, Any]]] = {}


def choice_labels(model: type[Model], name: str) -> tuple[str, dict[Any, Any]]:
    """The field's attribute name and its value → label table (labels still lazy: they follow the language)."""
    key = (model, name)
    found = _LABELS.get(key)
    if found is None:
        field = model._meta.get_field(name)
        found = _LABELS[key] = (field.attname, dict(field.flatchoices))  # type: ignore[union-attr]
    return found


@register.filter
def display(instance: Model | None, name: str) -> Any:
    """The label of the choice in field `name` of `instance`; the raw value when it is not a choice.

    Nothing for no object (None, a variable the template does not have), as `get_…_display` would show."""
    if not isinstance(instance, Model):
        return ""
    attname, labels = choice_labels(type(instance), name)
    value = getattr(instance, attname)
    label = labels.get(value)
    return value if label is None else str(label)
