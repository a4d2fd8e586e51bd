"""Key rules: RSA size and exponent, the algorithm, and the key types a profile allows."""

from __future__ import annotations

from privca.rules.catalogue import Breach, rule

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096  # CUCM takes no more; 8192-bit keys break Expressway SIP TLS zones
MIN_RSA_EXPONENT = 65537  # CA/Browser Forum BR 6.1.6: odd and at least 65537; e=1 or e=3 keys are broken or hostile
# The cap: Windows CryptoAPI and older Java reject exponents over 32 bits, and no key generator makes them.
MAX_RSA_EXPONENT = 2**32 - 1
ALGORITHMS = ("rsa", "ec")


def rsa_size(bits: int) -> Breach | None:
    if bits < MIN_RSA_BITS:
        return Breach(rule("key.rsa-min"), f"RSA-{bits} key is too weak; use RSA 2048 to 4096 bits or ECDSA")
    if bits > MAX_RSA_BITS:
        return Breach(rule("key.rsa-max"), f"RSA-{bits} key is over 4096 bits, which Expressway and CUCM do not "
                      "support (8192-bit keys break Expressway SIP TLS zones)")
    return None


def rsa_exponent(exponent: int) -> Breach | None:
    if exponent < MIN_RSA_EXPONENT or exponent % 2 == 0 or exponent > MAX_RSA_EXPONENT:
        shown = exponent if exponent.bit_length() <= 64 else f"of {exponent.bit_length()} bits"
        return Breach(rule("key.rsa-exponent"), f"RSA public exponent {shown} is not allowed; use 65537")
    return None


def algorithm(name: str) -> Breach | None:
    """``name`` as ``describe_public_key`` gives it: ``rsa``, ``ec``, ``ed25519``, ``dsa``..."""
    if name not in ALGORITHMS:
        return Breach(rule("key.algorithm"), f"{name} keys are not supported; use RSA or ECDSA (what Cisco UC products take)")
    return None


def allowed_by_profile(key_type: str, allowed: tuple[str, ...], profile: str) -> Breach | None:
    """``key_type`` as ``rsa:2048`` or ``ec:secp256r1``, against the profile's ``key.allowed`` list."""
    if key_type not in allowed:
        return Breach(rule("key.profile"), f"key type {key_type} is not allowed by profile {profile} "
                      f"(allowed: {', '.join(allowed)})")
    return None


def key_breaches(algorithm_name: str, bits: int, *, exponent: int | None = None) -> list[Breach]:
    """The profile-independent key rules, first breach only: a key that is too weak needs no further reasons."""
    if algorithm_name == "rsa":
        found = rsa_size(bits) or (rsa_exponent(exponent) if exponent is not None else None)
    else:
        found = algorithm(algorithm_name)
    return [found] if found else []
