import pytest

from certdesk.catalog.models import BusinessOffering, CertificateType
from certdesk.catalog.pricing import price_fen
from certdesk.core.choices import BusinessType

pytestmark = pytest.mark.django_db


@pytest.fixture
def cert_type(demo_catalog: None) -> CertificateType:
    return CertificateType.objects.get(code="cq-ggzy-org")  # 300.00 a year, key 100.00


@pytest.mark.parametrize(
    ("business_type", "years", "expected"),
    [
        (BusinessType.NEW, 2, 30000 * 2 + 10000),
        (BusinessType.RENEW, 3, 30000 * 3),
        (BusinessType.CHANGE, 1, 0),
        (BusinessType.REISSUE, 1, 10000),
        (BusinessType.UNLOCK, 1, 0),
        (BusinessType.REVOKE, 1, 0),
        (BusinessType.REDISPATCH, 1, 0),
    ],
)
def test_prices_per_business_type(
    cert_type: CertificateType, business_type: BusinessType, years: int, expected: int
) -> None:
    assert price_fen(certificate_type=cert_type, business_type=business_type, years=years) == expected


def test_catalogue_price_for_unlock_comes_from_the_offering(cert_type: CertificateType) -> None:
    BusinessOffering.objects.filter(certificate_type=cert_type, business_type=BusinessType.UNLOCK).update(
        price_fen=5000
    )
    assert price_fen(certificate_type=cert_type, business_type=BusinessType.UNLOCK, years=1) == 5000
