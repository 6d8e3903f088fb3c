"""Certificate profiles: the policy layer.

A profile decides what a certificate of its kind contains: subject rules, key
usage (which may depend on the key type), extended key usage, maximum
validity. Issuance code asks the profile for a builder and never decides these
things itself. End-entity profiles are what the RA may request; the CA,
OCSP-signer profiles are used only by the engine.

Chinese CAs issue organisation certificates singly (one signing certificate)
or as a dual pair: a signing certificate (签名证书, digitalSignature +
nonRepudiation) and an encryption certificate (加密证书, keyEncipherment for
RSA, keyAgreement for EC), each with its own key pair. `CERTIFICATE_SETS` names
the two arrangements for the RA's catalogue.
"""

from __future__ import annotations

import datetime
import unicodedata
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from django.core.exceptions import ValidationError

from certdesk.core.validators import check_uscc
from certdesk.pki import conf
from certdesk.pki.errors import RequestInvalid
from certdesk.pki.keys import CaPublicKey

ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
# RFC 9336 id-kp-documentSigning: signing documents, the main use of an organisation UKey.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# ETSI EN 319 412-1 semantics identifier prefix for a national trade register number.
NTR_PREFIX = "NTRCN-"
# X.520 upper bounds.
UB_ORGANIZATION = 64
UB_COMMON_NAME = 64
UB_STATE_LOCALITY = 128

_KU_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def key_usage(*enabled: str) -> x509.KeyUsage:
    flags = {name: name in enabled for name in _KU_FIELDS}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    title: str
    key_usage_ec: tuple[str, ...]
    key_usage_rsa: tuple[str, ...]
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    end_entity: bool = True
    requires_organisation: bool = True
    max_years: int | None = None
    ocsp_nocheck: bool = False
    ca_path_length: int | None = None

    def key_usage_for(self, public_key: CaPublicKey) -> x509.KeyUsage:
        names = self.key_usage_ec if isinstance(public_key, ec.EllipticCurvePublicKey) else self.key_usage_rsa
        return key_usage(*names)

    def max_validity_years(self) -> int:
        return self.max_years if self.max_years is not None else conf.max_validity_years()


ORG_SIGN = Profile(
    name="org-sign",
    title="机构签名证书",
    key_usage_ec=("digital_signature", "content_commitment"),
    key_usage_rsa=("digital_signature", "content_commitment"),
    extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH, DOCUMENT_SIGNING),
)
ORG_ENC = Profile(
    name="org-enc",
    title="机构加密证书",
    # An EC key encrypts by key agreement; an RSA key by key transport.
    key_usage_ec=("key_agreement",),
    key_usage_rsa=("key_encipherment", "data_encipherment"),
    extended_key_usage=(ExtendedKeyUsageOID.EMAIL_PROTECTION,),
)
OCSP_SIGNER = Profile(
    name="ocsp-signer",
    title="OCSP 签名证书",
    key_usage_ec=("digital_signature",),
    key_usage_rsa=("digital_signature",),
    extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    end_entity=False,
    requires_organisation=False,
    ocsp_nocheck=True,
)
ROOT_CA = Profile(
    name="root-ca",
    title="根 CA 证书",
    key_usage_ec=("key_cert_sign", "crl_sign"),
    key_usage_rsa=("key_cert_sign", "crl_sign"),
    end_entity=False,
    requires_organisation=False,
)
ISSUING_CA = Profile(
    name="issuing-ca",
    title="签发 CA 证书",
    key_usage_ec=("key_cert_sign", "crl_sign"),
    key_usage_rsa=("key_cert_sign", "crl_sign"),
    end_entity=False,
    requires_organisation=False,
    ca_path_length=0,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (ORG_SIGN, ORG_ENC, OCSP_SIGNER, ROOT_CA, ISSUING_CA)}
END_ENTITY_PROFILES = tuple(name for name, p in PROFILES.items() if p.end_entity)
CERTIFICATE_SETS: dict[str, tuple[str, ...]] = {"single": ("org-sign",), "dual": ("org-sign", "org-enc")}


def profile_get(name: str, *, end_entity: bool = True) -> Profile:
    profile = PROFILES.get(name)
    if profile is None or (end_entity and not profile.end_entity):
        raise RequestInvalid(
            f"未知的证书模板 {name!r}（可选：{', '.join(END_ENTITY_PROFILES)}）。", code="profile_unknown"
        )
    return profile


def _clean_text(value: str, *, label: str, limit: int, required: bool) -> str:
    text = unicodedata.normalize("NFC", (value or "").strip())
    if not text:
        if required:
            raise RequestInvalid(f"证书主题缺少{label}。", code="subject_invalid")
        return ""
    if len(text) > limit:
        raise RequestInvalid(f"{label}“{text}”超过 {limit} 个字符的上限。", code="subject_invalid")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise RequestInvalid(f"{label}中含有控制字符。", code="subject_invalid")
    return text


@dataclass(frozen=True)
class OrganisationSubject:
    organisation_name: str
    uscc: str
    province: str
    city: str

    def to_name(self) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
        if self.province:
            attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.province))
        if self.city:
            attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, self.city))
        attrs += [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organisation_name),
            x509.NameAttribute(ORGANIZATION_IDENTIFIER, NTR_PREFIX + self.uscc),
            x509.NameAttribute(NameOID.COMMON_NAME, self.organisation_name),
        ]
        return x509.Name(attrs)


def organisation_subject(*, organisation_name: str, uscc: str, province: str, city: str) -> OrganisationSubject:
    """Check and normalise the subject fields of an organisation certificate."""
    name = _clean_text(organisation_name, label="机构名称（O/CN）", limit=UB_ORGANIZATION, required=True)
    try:
        code = check_uscc(uscc)
    except ValidationError as exc:
        raise RequestInvalid(f"统一社会信用代码无效：{' '.join(exc.messages)}", code="subject_invalid") from None
    return OrganisationSubject(
        organisation_name=name,
        uscc=code,
        province=_clean_text(province, label="省份（ST）", limit=UB_STATE_LOCALITY, required=False),
        city=_clean_text(city, label="城市（L）", limit=UB_STATE_LOCALITY, required=False),
    )


def subject_fields_from_name(name: x509.Name) -> dict[str, str]:
    """Read an organisation subject out of a CSR for `pki_issue`: O, CN and organizationIdentifier
    are required and CN must equal O, C if present must be CN. Raises `RequestInvalid`."""

    def one(oid: x509.ObjectIdentifier, label: str) -> str:
        values = name.get_attributes_for_oid(oid)
        if len(values) > 1:
            raise RequestInvalid(f"CSR 主题中 {label} 出现了多次。", code="subject_invalid")
        value = values[0].value if values else ""
        return value if isinstance(value, str) else value.decode("utf-8", "replace")

    country = one(NameOID.COUNTRY_NAME, "C")
    if country and country != "CN":
        raise RequestInvalid(f"CSR 主题的国家（C）应为 CN，而不是 {country}。", code="subject_invalid")
    org = one(NameOID.ORGANIZATION_NAME, "O")
    cn = one(NameOID.COMMON_NAME, "CN")
    org_id = one(ORGANIZATION_IDENTIFIER, "organizationIdentifier")
    if not org:
        raise RequestInvalid("CSR 主题缺少机构名称（O）。", code="subject_invalid")
    if not cn:
        raise RequestInvalid("CSR 主题缺少通用名（CN）。", code="subject_invalid")
    if cn != org:
        raise RequestInvalid(f"CSR 主题的 CN“{cn}”应与机构名称 O“{org}”一致。", code="subject_invalid")
    if not org_id:
        raise RequestInvalid(
            "CSR 主题缺少 organizationIdentifier（2.5.4.97，NTRCN-统一社会信用代码）。", code="subject_invalid"
        )
    if not org_id.startswith(NTR_PREFIX):
        raise RequestInvalid(f"organizationIdentifier 应为 {NTR_PREFIX}<统一社会信用代码>。", code="subject_invalid")
    return {
        "organisation_name": org,
        "uscc": org_id[len(NTR_PREFIX) :],
        "province": one(NameOID.STATE_OR_PROVINCE_NAME, "ST"),
        "city": one(NameOID.LOCALITY_NAME, "L"),
    }


def ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, conf.ca_organization()),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def url(path: str) -> str:
    return f"{conf.base_url()}/pki/{path}"


def add_years(moment: datetime.datetime, years: int) -> datetime.datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a common year
        return moment.replace(year=moment.year + years, day=28)


def certificate_builder(
    *,
    profile: Profile,
    subject: x509.Name,
    public_key: CaPublicKey,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    issuer: x509.Certificate | None,
    issuer_slug: str = "issuing",
) -> x509.CertificateBuilder:
    """Everything the certificate will contain, as the profile says. `issuer=None` means self-signed;
    `issuer_slug` names the issuer's published files (`ca/<slug>.crt`, `crl/<slug>.crl`)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    is_ca = profile.name in (ROOT_CA.name, ISSUING_CA.name)
    if is_ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=profile.ca_path_length), True)
    elif not profile.ocsp_nocheck:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(profile.key_usage_for(public_key), True)
    if profile.extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(profile.extended_key_usage)), False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    if issuer is None:
        # RFC 5280 lets a self-signed certificate omit AKI, but a linter that cannot verify the
        # throwaway pre-certificate signature does not know it is self-signed; include it.
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), False)
    else:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(conf.policy_oid()), None)]), False
        )
    if profile.ocsp_nocheck:
        # RFC 6960 §4.2.2.2.1: clients need not check the responder's own status.
        builder = builder.add_extension(x509.OCSPNoCheck(), False)
    elif issuer is not None:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(url(f"crl/{issuer_slug}.crl"))], None, None, None
                    )
                ]
            ),
            False,
        )
        access: list[x509.AccessDescription] = []
        if profile.end_entity:
            access.append(
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url("ocsp/")))
            )
        access.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url(f"ca/{issuer_slug}.crt"))
            )
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), False)
    return builder
