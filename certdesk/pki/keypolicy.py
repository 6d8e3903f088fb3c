"""Which subject public keys the CA certifies (after Boulder's `goodkey`).

RSA: 2048 to 8192 bits, exponent 65537, no small prime factor, not
Fermat-factorable (primes too close together). EC: P-256 or P-384 only;
`cryptography` has already checked the point is on the curve when loading.
Everything else is refused with a reason and a stable code.
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from certdesk.pki.errors import KeyRejected
from certdesk.pki.keys import CaPublicKey

RSA_MIN_BITS = 2048
RSA_MAX_BITS = 8192
ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
_SMALL_PRIMES = [p for p in range(3, 752) if all(p % d for d in range(2, math.isqrt(p) + 1))]
_FERMAT_ROUNDS = 100


def _fermat_factorable(n: int) -> bool:
    # If p and q are close, a = ceil(sqrt(n)) + i makes a² − n a perfect square within a few rounds.
    a = math.isqrt(n)
    if a * a < n:
        a += 1
    for _ in range(_FERMAT_ROUNDS):
        b2 = a * a - n
        b = math.isqrt(b2)
        if b * b == b2:
            return True
        a += 1
    return False


def public_key_check(key: PublicKeyTypes) -> CaPublicKey:
    """Return the key if policy accepts it, else raise `KeyRejected` saying why."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        bits = key.key_size
        if bits < RSA_MIN_BITS:
            raise KeyRejected(f"RSA 密钥长度 {bits} 位太短，至少需要 {RSA_MIN_BITS} 位。", code="key_too_small")
        if bits > RSA_MAX_BITS:
            raise KeyRejected(f"RSA 密钥长度 {bits} 位超过上限 {RSA_MAX_BITS} 位。", code="key_too_large")
        if numbers.e != 65537:
            raise KeyRejected(f"RSA 公钥指数应为 65537，而不是 {numbers.e}。", code="key_rsa_exponent")
        n = numbers.n
        if n % 2 == 0 or any(n % p == 0 for p in _SMALL_PRIMES):
            raise KeyRejected("RSA 模数有小素因子：这是一把弱密钥。", code="key_weak")
        if _fermat_factorable(n):
            raise KeyRejected("RSA 模数的两个素因子过于接近（可被费马分解）：这是一把弱密钥。", code="key_weak")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            allowed = "、".join(ALLOWED_CURVES.values())
            raise KeyRejected(f"椭圆曲线 {key.curve.name} 不受支持，仅接受 {allowed}。", code="key_curve_unsupported")
        return key
    raise KeyRejected(
        f"密钥类型 {type(key).__name__} 不受支持，仅接受 RSA（≥{RSA_MIN_BITS} 位）或 ECDSA P-256/P-384。",
        code="key_type_unsupported",
    )
