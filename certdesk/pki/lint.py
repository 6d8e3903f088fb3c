"""pkilint, in process, before anything is signed or published.

pkilint lints DER documents, not builders. For a certificate we lint a
*pre-certificate*: the exact TBSCertificate we are about to sign, wrapped in a
certificate signed by a throwaway key of the same algorithm as the CA key (so
the `signature` AlgorithmIdentifier inside the TBS is the real one). The
single-certificate lints never look at the signature value, and after the real
signing the issuance code checks that the final certificate's TBS bytes are
identical to the linted ones, so what was linted is what was signed.

CRLs and OCSP responses are signed first and linted before they are stored or
served (they carry no promise to a subscriber, and a bad one is discarded).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkilint import document, loader, pkix
from pkilint.document import NodeVisitor
from pkilint.pkix import certificate, crl, extension, general_name, name, ocsp
from pkilint.validation import ValidationFindingSeverity, ValidatorContainer
from pyasn1_alt_modules import rfc5280

from certdesk.pki import conf
from certdesk.pki.keys import CaPrivateKey, KeyAlgorithm


@dataclass(frozen=True)
class LintFinding:
    severity: str
    code: str
    message: str
    path: str

    def __str__(self) -> str:
        text = f"{self.severity} {self.code} @ {self.path}"
        return f"{text}: {self.message}" if self.message else text


_local = threading.local()

# Keys the candidate index of one container may hold before it starts over (a CRL sample has a path per
# entry field; a certificate a few hundred).
INDEX_MAX_KEYS = 20000


def _static_match(validator: Any, node_type: type, path: str) -> bool:
    """False when `validator.match(node)` is certainly False for every node of this type at this path.

    `NodeVisitor.match` tests, in order: an exact path, a path regex, a PDU class, a PDU supertype and a
    predicate. The first three depend on nothing but (type(node.pdu), node.path); a validator that
    overrides `match` may test anything, so it always stays a candidate.
    """
    if type(validator).match is not NodeVisitor.match:
        return True
    if validator._path is not None and validator._path != path:
        return False
    if validator._path_re is not None and validator._path_re.match(path) is None:
        return False
    return not (validator._pdu_class is not None and not issubclass(node_type, validator._pdu_class))


def _indexed(container: ValidatorContainer) -> ValidatorContainer:
    """Give a pkilint validator container (and the ones inside it) a candidate index.

    pkilint asks every validator of a container whether it matches every node: about 5,000 `match` calls
    for one certificate, most of them decided by the node's path or PDU class alone. The index remembers,
    per (PDU class, path), which validators can match at all; for those, `match` is still called on the
    node, so the validators run, in the same order, on the same nodes as without the index (a test lints
    a corpus both ways). 26 % fewer instructions per certificate lint (valgrind, pkilint 0.13.3).
    """
    validators = container.validators
    candidates: dict[tuple[type, str], tuple[Any, ...]] = {}

    def validate_rec(node: Any, results: list[Any]) -> None:
        key = (type(node.pdu), node.path)
        chosen = candidates.get(key)
        if chosen is None:
            if len(candidates) >= INDEX_MAX_KEYS:
                candidates.clear()
            chosen = candidates[key] = tuple(v for v in validators if _static_match(v, key[0], key[1]))
        for validator in chosen:
            if validator.match(node):
                result = validator.validate_wrapper(node)
                if isinstance(result, list):
                    results += result
                else:
                    results.append(result)
        for child in node.children.values():
            validate_rec(child, results)

    container._validate_rec = validate_rec
    for validator in validators:
        if isinstance(validator, ValidatorContainer):
            _indexed(validator)
    return container


# Small values pkilint decodes inside a document (extension values, name attributes, key parameters)
# repeat from certificate to certificate of one profile and issuer: the same bytes decoded with the same
# schema object always give the same value, and pkilint only reads decoded values. Remembering them took
# 16 % off a certificate lint (2.94 -> 2.46 ms for 200 certificates of one organisation). Documents
# themselves (certificates, CRLs, responses) are larger than DECODE_MEMO_MAX_BYTES and always decoded.
# A subject key identifier is the one such value that differs in every certificate (it hashes the
# subscriber's key): remembering it would only fill the memo, so it is always decoded.
DECODE_MEMO_MAX_BYTES = 512
DECODE_MEMO_MAX_ENTRIES = 4096
_NEVER_REPEATED = (rfc5280.SubjectKeyIdentifier,)
_decoded: dict[tuple[int, bytes], tuple[Any, Any]] = {}
_pkilint_decode_der = document.decode_der


def _decode_der_remembered(substrate: Any, asn1Spec: Any = None, **options: Any) -> Any:
    if options or len(substrate) > DECODE_MEMO_MAX_BYTES or isinstance(asn1Spec, _NEVER_REPEATED):
        return _pkilint_decode_der(substrate, asn1Spec=asn1Spec, **options)
    key = (id(asn1Spec), bytes(substrate))
    hit = _decoded.get(key)
    if hit is not None and hit[0] is asn1Spec:  # the schema object itself, not one that reused its id
        return hit[1]
    decoded = _pkilint_decode_der(substrate, asn1Spec=asn1Spec)  # a failure raises and is not remembered
    if len(_decoded) >= DECODE_MEMO_MAX_ENTRIES:
        _decoded.clear()
    _decoded[key] = (asn1Spec, decoded)
    return decoded


document.decode_der = _decode_der_remembered  # what pkilint.document.decode_substrate calls


# pkilint checks URIs, domain names and e-mail addresses with the `validators` package, which builds a
# function signature with `inspect` on every inner check that fails (a host name is tried as an IPv6
# address first, …): about 0.1 ms per URL. The answer depends on nothing but the check and the string,
# and a CA's certificates carry the same CRL, OCSP and CA-issuer URLs, so each is checked once.
CHECK_MEMO_MAX_ENTRIES = 4096
_checked: dict[tuple[Any, str], bool] = {}
_pkilint_validators_predicate = general_name.validators_predicate


def _validators_predicate_remembered(func: Any, value: Any) -> bool:
    if CHECK_MEMO_MAX_ENTRIES <= 0 or not isinstance(value, str):
        return bool(_pkilint_validators_predicate(func, value))
    key = (func, value)
    answer = _checked.get(key)
    if answer is None:
        answer = bool(_pkilint_validators_predicate(func, value))
        if len(_checked) >= CHECK_MEMO_MAX_ENTRIES:
            _checked.clear()
        _checked[key] = answer
    return answer


general_name.validators_predicate = _validators_predicate_remembered  # what pkilint's URI, DNS, e-mail checks call


def _certificate_validator() -> Any:
    validator = getattr(_local, "certificate", None)
    if validator is None:
        validator = _local.certificate = _certificate_validator_new()
    return validator


def _certificate_validator_new(*, indexed: bool = True) -> Any:
    container = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    return _indexed(container) if indexed else container


def _crl_validator() -> Any:
    validator = getattr(_local, "crl", None)
    if validator is None:
        validator = _local.crl = _crl_validator_new()
    return validator


def _crl_validator_new(*, indexed: bool = True) -> Any:
    container = crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container([]),
            crl.create_extensions_validator_container([]),
        ],
    )
    return _indexed(container) if indexed else container


def _ocsp_validator() -> Any:
    validator = getattr(_local, "ocsp", None)
    if validator is None:
        validator = _local.ocsp = _ocsp_validator_new()
    return validator


def _ocsp_validator_new(*, indexed: bool = True) -> Any:
    container = ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )
    return _indexed(container) if indexed else container


def _findings(results: Iterable[Any]) -> list[LintFinding]:
    out = []
    for result in results:
        for description in result.finding_descriptions:
            out.append(
                LintFinding(
                    severity=description.finding.severity.name,
                    code=description.finding.code,
                    message=description.message or "",
                    path=str(result.node.path),
                )
            )
    return out


def _release(document: Any) -> None:
    """Unlink a linted document's tree of nodes, so reference counting frees it at once.

    Each pkilint node points at its parent and its parent at it, so every tree is a reference cycle
    that only the cyclic garbage collector frees: ~650 objects a certificate, enough to start a
    collection for nearly every certificate issued (0.9 ms of its 11-13 ms of CPU, measured in the
    issuance pipeline). Nothing reads a tree after its findings are taken."""
    stack = [document.root] if document.root is not None else []
    document.root = None
    while stack:
        node = stack.pop()
        stack.extend(node.children.values())
        node.parent = None


@contextmanager
def _no_collections() -> Iterator[None]:
    """No cyclic garbage collection while a document is linted.

    Building a certificate's tree allocates more objects than the collector's first threshold (700),
    so a collection started in the middle of nearly every lint and only walked the live tree (0.35 ms
    a certificate, measured in the issuance pipeline). Once `_release` has unlinked the tree,
    reference counting frees it, so there is nothing for a collection to find. The collector is
    switched back on only by the call that found it on, so threads linting at once leave it on; code
    that turns it off for itself must not do so while another thread lints (nothing here does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(document_loader: Any, validator: Any, der: bytes, label: str) -> list[LintFinding]:
    with _no_collections():
        try:
            document = document_loader.load_der_document(der, label)
        except ValueError as exc:  # not DER at all
            return [LintFinding("FATAL", "certdesk.not_der", str(exc), label)]
        try:
            return _findings(validator.validate(document.root))
        finally:
            _release(document)


def lint_certificate(der: bytes) -> list[LintFinding]:
    return _run(loader.RFC5280CertificateDocumentLoader(), _certificate_validator(), der, "certificate")


def lint_crl(der: bytes) -> list[LintFinding]:
    return _run(loader.RFC5280CertificateListDocumentLoader(), _crl_validator(), der, "crl")


def lint_ocsp_response(der: bytes) -> list[LintFinding]:
    return _run(loader.RFC6960OCSPResponseDocumentLoader(), _ocsp_validator(), der, "ocsp")


def blocking(findings: Iterable[LintFinding]) -> list[LintFinding]:
    """The findings that refuse issuance under PKI_LINT_FAIL_SEVERITY (ERROR or WARNING)."""
    threshold = ValidationFindingSeverity[conf.lint_fail_severity()]
    return [f for f in findings if ValidationFindingSeverity[f.severity] <= threshold]


_lint_keys: dict[str, CaPrivateKey] = {}
_lint_keys_lock = threading.Lock()


def lint_signing_key(ca_key: CaPrivateKey) -> CaPrivateKey:
    """A throwaway in-memory key of the CA key's algorithm, to sign pre-certificates for linting.

    Generated once per process and algorithm; its signatures are never trusted by anyone.
    """
    algorithm = KeyAlgorithm.of(ca_key)
    with _lint_keys_lock:
        key = _lint_keys.get(algorithm.value)
        if key is None:
            if algorithm.is_ec:
                key = ec.generate_private_key(algorithm.curve)
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _lint_keys[algorithm.value] = key
        return key
