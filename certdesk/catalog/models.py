"""The catalogue behind 项目选择: region → industry → project category →
sub-project → certificate type, with prices and required materials per
business type. Everything here is edited in the admin, never in code."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.core.choices import BusinessType


class CatalogNode(models.Model):
    name = models.CharField(_("名称"), max_length=100)
    code = models.SlugField(_("代码"), max_length=64, unique=True)
    sort_order = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        abstract = True
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class Region(CatalogNode):
    class Meta(CatalogNode.Meta):
        verbose_name = _("区域")
        verbose_name_plural = _("区域")


class Industry(CatalogNode):
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="industries", verbose_name=_("区域"))

    class Meta(CatalogNode.Meta):
        verbose_name = _("行业")
        verbose_name_plural = _("行业")


class ProjectCategory(CatalogNode):
    industry = models.ForeignKey(Industry, on_delete=models.PROTECT, related_name="categories", verbose_name=_("行业"))

    class Meta(CatalogNode.Meta):
        verbose_name = _("项目大类")
        verbose_name_plural = _("项目大类")


class SubProject(CatalogNode):
    category = models.ForeignKey(
        ProjectCategory, on_delete=models.PROTECT, related_name="sub_projects", verbose_name=_("项目大类")
    )

    class Meta(CatalogNode.Meta):
        verbose_name = _("子项目")
        verbose_name_plural = _("子项目")


def _validity_years_check(value: list[int]) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(y, int) and 1 <= y <= 10 for y in value):
        raise ValidationError(_("有效期请填写 1–10 之间的整数年份列表，例如 [1, 2, 3]。"))


class CertificateType(CatalogNode):
    """证书类别: what a customer finally picks, and what it costs."""

    sub_project = models.ForeignKey(
        SubProject, on_delete=models.PROTECT, related_name="certificate_types", verbose_name=_("子项目")
    )
    validity_years = models.JSONField(
        _("可选有效期（年）"), default=list, validators=[_validity_years_check], help_text=_("例如 [1, 2, 3]")
    )
    certificate_fee_fen = models.PositiveIntegerField(_("证书费（分/年）"), default=0)
    key_fee_fen = models.PositiveIntegerField(_("介质费（分）"), default=0)
    dual_certificate = models.BooleanField(_("双证书"), default=False, help_text=_("签名证书 + 加密证书"))
    description = models.TextField(_("说明"), blank=True)

    class Meta(CatalogNode.Meta):
        verbose_name = _("证书类别")
        verbose_name_plural = _("证书类别")


class BusinessOffering(models.Model):
    """A business type this certificate type offers, with its catalogue price
    (used where the fee is not derived from the certificate and key fees:
    unlock, revoke, redispatch)."""

    certificate_type = models.ForeignKey(CertificateType, on_delete=models.CASCADE, related_name="offerings")
    business_type = models.CharField(_("业务类型"), max_length=16, choices=BusinessType.choices)
    price_fen = models.PositiveIntegerField(_("目录价格（分）"), default=0, validators=[MinValueValidator(0)])
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("可办业务")
        verbose_name_plural = _("可办业务")
        constraints = [
            models.UniqueConstraint(fields=["certificate_type", "business_type"], name="uniq_offering_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.certificate_type} · {self.get_business_type_display()}"


class MaterialKind(models.Model):
    """A kind of paperwork (数字证书申请表, 营业执照 …), its upload instructions and template."""

    code = models.SlugField(_("代码"), max_length=64, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    instructions = models.TextField(_("上传说明"), blank=True)
    template_file = models.FileField(_("模板文件"), upload_to="catalog/templates/", blank=True)
    sample_image = models.FileField(_("填写样例"), upload_to="catalog/samples/", blank=True)

    class Meta:
        verbose_name = _("材料种类")
        verbose_name_plural = _("材料种类")

    def __str__(self) -> str:
        return self.name


class RequiredMaterial(models.Model):
    certificate_type = models.ForeignKey(CertificateType, on_delete=models.CASCADE, related_name="required_materials")
    business_type = models.CharField(_("业务类型"), max_length=16, choices=BusinessType.choices)
    kind = models.ForeignKey(MaterialKind, on_delete=models.PROTECT, verbose_name=_("材料"))
    is_required = models.BooleanField(_("必填"), default=True)
    sort_order = models.PositiveIntegerField(_("排序"), default=0)

    class Meta:
        ordering = ["sort_order", "id"]
        verbose_name = _("所需材料")
        verbose_name_plural = _("所需材料")
        constraints = [
            models.UniqueConstraint(
                fields=["certificate_type", "business_type", "kind"], name="uniq_material_per_type_business"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.get_business_type_display()})"
