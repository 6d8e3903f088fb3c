from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from certdesk.catalog.models import CertificateType, Industry, ProjectCategory, Region, SubProject

pytestmark = pytest.mark.django_db
SELECT = reverse("catalog:select")


def _chongqing_path() -> dict[str, int]:
    region = Region.objects.get(name="重庆")
    industry = Industry.objects.get(region=region, name="公共资源交易")
    category = ProjectCategory.objects.get(industry=industry)
    sub = SubProject.objects.get(category=category, name="重庆市公共资源交易中心")
    cert_type = CertificateType.objects.filter(sub_project=sub).first()
    assert cert_type is not None
    return {
        "region": region.pk,
        "industry": industry.pk,
        "category": category.pk,
        "sub_project": sub.pk,
        "certificate_type": cert_type.pk,
    }


def test_demo_catalogue_is_idempotent(demo_catalog: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("catalog_load_demo")
    assert Region.objects.count() == 2
    assert CertificateType.objects.count() == 4
    assert SubProject.objects.filter(name="重庆市公共资源交易中心").count() == 1


def test_cascade_requires_login(client: Client) -> None:
    response = client.get(SELECT)
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_walk_the_cascade(customer_client: Client, demo_catalog: None) -> None:
    path = _chongqing_path()
    page = customer_client.get(SELECT).content.decode()
    assert "重庆" in page and "北京" in page
    assert "公共资源交易" not in page  # industries appear only after a region is chosen
    page = customer_client.get(SELECT, {"region": path["region"]}).content.decode()
    assert "公共资源交易" in page
    assert "政府采购" not in page  # Beijing's industry is not offered under Chongqing
    response = customer_client.get(SELECT, {**path, "years": 2}, HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    assert 'id="cascade"' in fragment and "<html" not in fragment  # htmx gets the fragment only
    assert "300.00 元/年" in fragment
    assert "签章取样表" in fragment
    assert response.context["selection"].years == 2


def test_choice_not_under_its_parent_is_dropped(customer_client: Client, demo_catalog: None) -> None:
    path = _chongqing_path()
    beijing = Region.objects.get(name="北京")
    response = customer_client.get(SELECT, {**path, "region": beijing.pk, "years": 1})
    selection = response.context["selection"]
    assert selection.levels[0].selected == beijing.pk
    assert selection.levels[1].selected is None
    assert selection.certificate_type is None


@pytest.mark.parametrize("junk", ["abc", "-1", "99999999", "1e9", "' OR 1=1"])
def test_junk_parameters_never_500(customer_client: Client, demo_catalog: None, junk: str) -> None:
    response = customer_client.get(SELECT, {"region": junk, "industry": junk, "years": junk, "business": junk})
    assert response.status_code == 200


def test_inactive_certificate_type_not_offered(customer_client: Client, demo_catalog: None) -> None:
    path = _chongqing_path()
    CertificateType.objects.filter(pk=path["certificate_type"]).update(is_active=False)
    response = customer_client.get(SELECT, path)
    assert response.context["selection"].certificate_type is None
