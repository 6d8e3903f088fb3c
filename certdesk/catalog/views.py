"""项目选择: the catalogue cascade. One view renders the whole cascade from the
query string; htmx swaps just the cascade when a select changes, and the same
form works without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from certdesk.catalog.models import CertificateType
from certdesk.catalog.selectors import (
    CASCADE_LEVELS,
    catalog_level_options,
    certificate_type_get,
    required_materials_list,
)
from certdesk.core.choices import BusinessType

LEVEL_LABELS = {
    "region": _("所属区域"),
    "industry": _("行业"),
    "category": _("项目大类"),
    "sub_project": _("子项目"),
    "certificate_type": _("证书类别"),
}


@dataclass
class CascadeLevel:
    name: str
    label: str
    options: list[Any]
    selected: int | None


@dataclass
class CascadeSelection:
    levels: list[CascadeLevel] = field(default_factory=list)
    certificate_type: CertificateType | None = None
    years: int | None = None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def cascade_from_query(query: Any) -> CascadeSelection:
    """Walk the levels top-down; a choice that is not a child of the level above is dropped."""
    selection = CascadeSelection()
    parent_id: int | None = None
    for level, _model, _parent in CASCADE_LEVELS:
        options = list(catalog_level_options(level=level, parent_id=parent_id))
        wanted = _int_or_none(query.get(level))
        selected = wanted if wanted in {option.pk for option in options} else None
        selection.levels.append(CascadeLevel(level, str(LEVEL_LABELS[level]), options, selected))
        parent_id = selected
    if parent_id is not None:
        selection.certificate_type = certificate_type_get(certificate_type_id=parent_id)
        years = _int_or_none(query.get("years"))
        if selection.certificate_type and years in selection.certificate_type.validity_years:
            selection.years = years
    return selection


@login_required
def project_select(request: HttpRequest) -> HttpResponse:
    business = request.GET.get("business", BusinessType.NEW)
    business_type = BusinessType(business) if business in BusinessType.values else BusinessType.NEW
    selection = cascade_from_query(request.GET)
    materials = []
    if selection.certificate_type is not None:
        materials = list(
            required_materials_list(certificate_type=selection.certificate_type, business_type=business_type)
        )
    context = {
        "selection": selection,
        "business_type": business_type,
        "materials": materials,
    }
    template = "catalog/_cascade.html" if getattr(request, "htmx", False) else "catalog/project_select.html"
    return render(request, template, context)
