from django.contrib import admin

from certdesk.catalog.models import (
    BusinessOffering,
    CertificateType,
    Industry,
    MaterialKind,
    ProjectCategory,
    Region,
    RequiredMaterial,
    SubProject,
)


class NodeAdmin(admin.ModelAdmin):
    list_display: tuple[str, ...] = ("name", "code", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}


@admin.register(Region)
class RegionAdmin(NodeAdmin):
    pass


@admin.register(Industry)
class IndustryAdmin(NodeAdmin):
    list_display = ("name", "code", "region", "sort_order", "is_active")
    list_filter = ("region",)


@admin.register(ProjectCategory)
class ProjectCategoryAdmin(NodeAdmin):
    list_display = ("name", "code", "industry", "sort_order", "is_active")
    list_filter = ("industry__region",)


@admin.register(SubProject)
class SubProjectAdmin(NodeAdmin):
    list_display = ("name", "code", "category", "sort_order", "is_active")
    list_filter = ("category__industry__region",)


class OfferingInline(admin.TabularInline):
    model = BusinessOffering
    extra = 0


class RequiredMaterialInline(admin.TabularInline):
    model = RequiredMaterial
    extra = 0


@admin.register(CertificateType)
class CertificateTypeAdmin(NodeAdmin):
    list_display = (
        "name",
        "code",
        "sub_project",
        "certificate_fee_fen",
        "key_fee_fen",
        "dual_certificate",
        "sort_order",
        "is_active",
    )
    list_filter = ("sub_project__category__industry__region", "dual_certificate")
    inlines = [OfferingInline, RequiredMaterialInline]


@admin.register(MaterialKind)
class MaterialKindAdmin(admin.ModelAdmin):
    list_display = ("name", "code")
