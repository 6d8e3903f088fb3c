"""What a business type costs, from the catalogue, in integer fen."""

from __future__ import annotations

from certdesk.catalog.models import BusinessOffering, CertificateType
from certdesk.core.choices import BusinessType


def price_fen(*, certificate_type: CertificateType, business_type: BusinessType, years: int) -> int:
    """new = certificate fee × years + key fee; renew = certificate fee × years;
    change = 0; reissue = key fee; unlock, revoke, redispatch = the catalogue price."""
    if business_type == BusinessType.NEW:
        return certificate_type.certificate_fee_fen * years + certificate_type.key_fee_fen
    if business_type == BusinessType.RENEW:
        return certificate_type.certificate_fee_fen * years
    if business_type == BusinessType.CHANGE:
        return 0
    if business_type == BusinessType.REISSUE:
        return certificate_type.key_fee_fen
    offering = BusinessOffering.objects.filter(certificate_type=certificate_type, business_type=business_type).first()
    return offering.price_fen if offering else 0
