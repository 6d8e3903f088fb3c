"""Reads of the catalogue, for the cascade and for pricing."""

from __future__ import annotations

from django.db.models import QuerySet

from certdesk.catalog.models import (
    CertificateType,
    Industry,
    ProjectCategory,
    Region,
    RequiredMaterial,
    SubProject,
)
from certdesk.core.choices import BusinessType

# The cascade's levels in order: (name, model, parent field).
CASCADE_LEVELS = (
    ("region", Region, None),
    ("industry", Industry, "region"),
    ("category", ProjectCategory, "industry"),
    ("sub_project", SubProject, "category"),
    ("certificate_type", CertificateType, "sub_project"),
)
LEVEL_NAMES = tuple(level for level, _, _ in CASCADE_LEVELS)


def catalog_level_options(*, level: str, parent_id: int | None) -> QuerySet:
    """Active children of `parent_id` at `level` (regions when level is 'region')."""
    for name, model, parent_field in CASCADE_LEVELS:
        if name == level:
            options = model.objects.filter(is_active=True)
            if parent_field is None:
                return options
            if parent_id is None:
                return model.objects.none()
            return options.filter(**{f"{parent_field}_id": parent_id})
    raise ValueError(f"unknown catalogue level {level!r}")


def certificate_type_get(
    *, certificate_type_id: int, business_type: BusinessType | None = None
) -> CertificateType | None:
    """An active certificate type whose whole ancestry is active (and offers the business type)."""
    types = CertificateType.objects.select_related("sub_project__category__industry__region").filter(
        pk=certificate_type_id,
        is_active=True,
        sub_project__is_active=True,
        sub_project__category__is_active=True,
        sub_project__category__industry__is_active=True,
        sub_project__category__industry__region__is_active=True,
    )
    if business_type is not None:
        types = types.filter(offerings__business_type=business_type, offerings__is_active=True)
    return types.first()


def required_materials_list(
    *, certificate_type: CertificateType, business_type: BusinessType
) -> QuerySet[RequiredMaterial]:
    return RequiredMaterial.objects.filter(
        certificate_type=certificate_type, business_type=business_type
    ).select_related("kind")
