"""Issuance profiles: TOML files turned into frozen Profile objects, checked when they are loaded.

Every problem in a file is reported at once as ``file: dotted.key: message``. Unknown keys are errors, because a
typo (``allow_wildcard`` for ``allow_wildcards``) must never quietly weaken policy. A profile may ``extends``
one other profile that does not itself extend anything; tables are merged key by key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privca.common.fsutil import read_regular_file
from privca.errors import ProfileError
from privca.keys.material import KEY_TYPES
from privca.rules.names import MAX_SAN_TEXT

# RFC 5280 key usage names (camelCase, as RFC 5280 and django-ca write them) -> cryptography KeyUsage argument.
KEY_USAGES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
LEAF_FORBIDDEN_KEY_USAGES = {"keyCertSign", "cRLSign"}
# Key usages an RSA key cannot honour (key agreement is Diffie-Hellman), and those an EC key cannot (it never
# encrypts): a certificate that claims them misleads the peer's TLS stack (RFC 5280 4.2.1.3, RFC 8813 3).
RSA_IMPOSSIBLE_KEY_USAGES = {"keyAgreement", "encipherOnly", "decipherOnly"}
EC_IMPOSSIBLE_KEY_USAGES = {"keyEncipherment", "dataEncipherment"}
# Extended key usages a leaf for a UC server or client must never carry: OCSPSigning would let the holder's key
# sign OCSP answers that peers accept for every certificate of the CA (a delegated responder, RFC 6960 4.2.2.2),
# and codeSigning or timeStamping would make a TLS key vouch for software or for time.
LEAF_FORBIDDEN_EKUS = {"OCSPSigning", "codeSigning", "timeStamping"}

# Extended key usage names -> OIDs (RFC 5280 4.2.1.12; ipsecEndSystem from RFC 2459, which CUCM CSRs ask for).
EXTENDED_KEY_USAGES = {
    "serverAuth": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "ipsecEndSystem": "1.3.6.1.5.5.7.3.5",
    "timeStamping": "1.3.6.1.5.5.7.3.8",
    "OCSPSigning": "1.3.6.1.5.5.7.3.9",
    # id-kp-cmcRA (RFC 6402 2.10): a registration authority of a certificate management protocol; privca's SCEP
    # RA certificate, so that it can neither act as a TLS client nor server.
    "cmcRA": "1.3.6.1.5.5.7.3.28",
}
EKU_NAMES_BY_OID = {oid: name for name, oid in EXTENDED_KEY_USAGES.items()}

SUBJECT_ATTRIBUTES = ("CN", "O", "OU", "L", "ST", "C", "serialNumber", "emailAddress")
SAN_TYPES = ("dns", "ip")

# The schema: table -> {key: (type, required)}; top-level scalars under "".
_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "": {
        "schema": (int, True),
        "description": (str, True),
        "extends": (str, False),
        "kind": (str, True),
        "validity_days": (int, True),
        "max_validity_days": (int, False),
        "products": (list, False),
        "replaces_shipped": (bool, False),
    },
    "key": {"allowed": (list, True)},
    "issuer": {"allowed_algorithms": (list, False)},
    "key_usage": {"critical": (bool, False), "values": (list, True), "rsa_add": (list, False), "ec_add": (list, False)},
    "extended_key_usage": {"critical": (bool, False), "values": (list, True)},
    "san": {
        "required": (bool, False),
        "types": (list, False),
        "allow_wildcards": (bool, False),
        "max_total_length": (int, False),
        "cn_must_be_in_san": (bool, False),
        "allow_special_ips": (bool, False),
    },
    "subject": {"keep": (list, False), "require_cn": (bool, False)},
    "revocation": {"crl_distribution_point": (bool, False), "ocsp": (bool, False)},
}


@dataclass(frozen=True)
class Profile:
    """What a certificate issued under this profile is allowed to be. Built only by ``load_profile``."""

    name: str
    description: str
    source: str  # "shipped" or the path of a store profile
    validity_days: int
    max_validity_days: int
    products: tuple[str, ...]
    key_allowed: tuple[str, ...]
    issuer_algorithms: tuple[str, ...]
    key_usage: tuple[str, ...]
    key_usage_rsa_add: tuple[str, ...]
    key_usage_ec_add: tuple[str, ...]
    key_usage_critical: bool
    eku: tuple[str, ...]
    eku_critical: bool
    san_required: bool
    san_types: tuple[str, ...]
    allow_wildcards: bool
    max_san_length: int
    cn_must_be_in_san: bool
    allow_special_ips: bool
    subject_keep: tuple[str, ...]
    require_cn: bool
    crl_distribution_point: bool
    ocsp: bool

    def key_usage_for(self, algorithm: str) -> tuple[str, ...]:
        """Key usages for a subject key of ``algorithm`` (``rsa`` or ``ec``)."""
        extra = self.key_usage_rsa_add if algorithm == "rsa" else self.key_usage_ec_add
        return tuple(dict.fromkeys(self.key_usage + extra))

    def summary(self) -> dict[str, Any]:
        """What the profile grants, for ``privca profiles show`` and ``--json``."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "products": list(self.products),
            "validity_days": self.validity_days,
            "max_validity_days": self.max_validity_days,
            "key_types": list(self.key_allowed),
            "issuer_algorithms": list(self.issuer_algorithms),
            "key_usage": {"critical": self.key_usage_critical, "values": list(self.key_usage),
                          "rsa_add": list(self.key_usage_rsa_add), "ec_add": list(self.key_usage_ec_add)},
            "extended_key_usage": {"critical": self.eku_critical, "values": list(self.eku)},
            "san": {"required": self.san_required, "types": list(self.san_types),
                    "allow_wildcards": self.allow_wildcards, "max_total_length": self.max_san_length,
                    "cn_must_be_in_san": self.cn_must_be_in_san, "allow_special_ips": self.allow_special_ips},
            "subject": {"keep": list(self.subject_keep), "require_cn": self.require_cn},
            "revocation": {"crl_distribution_point": self.crl_distribution_point, "ocsp": self.ocsp},
        }


def shipped_profiles_dir() -> Path:
    """Profiles shipped with privca: inside the wheel, or ``profiles/`` at the top of a checkout."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_profiles"
    return packaged if packaged.is_dir() else package.parent / "profiles"


def profile_dirs(store_profiles: Path | None) -> list[tuple[str, Path]]:
    """Where profiles are looked up, first match wins: the store's own folder, then the shipped ones."""
    dirs = []
    if store_profiles is not None and store_profiles.is_dir():
        dirs.append(("store", store_profiles))
    dirs.append(("shipped", shipped_profiles_dir()))
    return dirs


def available_profiles(store_profiles: Path | None = None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for _, folder in profile_dirs(store_profiles):
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def find_profile(name: str, store_profiles: Path | None = None) -> Path:
    available = available_profiles(store_profiles)
    if name not in available:
        raise ProfileError(f"profile {name!r}: unknown; available: {', '.join(sorted(available))}")
    return available[name]


def load_profile(name: str, store_profiles: Path | None = None) -> Profile:
    """Load a profile by name from the store's folder or the shipped ones."""
    return load_profile_file(find_profile(name, store_profiles), store_profiles)


MAX_PROFILE_BYTES = 256 * 1024


def _read_toml(path: Path) -> dict[str, Any]:
    raw = read_regular_file(path, MAX_PROFILE_BYTES, ProfileError)
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: larger than 256 KiB; this is not a profile")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise ProfileError(f"{path}: not valid TOML (nested too deeply)") from None


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    # replaces_shipped speaks of the parent's own file name: it is never inherited.
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in parent.items() if k != "replaces_shipped"}
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    merged.pop("extends", None)
    return merged


def load_profile_file(path: Path, store_profiles: Path | None = None) -> Profile:
    """Load and check one profile file; raise ProfileError listing every problem found."""
    data = _read_toml(path)
    problems: list[str] = []
    _check_shape(data, problems)
    parent_name = data.get("extends")
    if isinstance(parent_name, str):
        try:
            parent_path = find_profile(parent_name, store_profiles)
        except ProfileError as exc:
            problems.append(f"extends: {exc.message}")
        else:
            if parent_path.resolve() == path.resolve():
                problems.append("extends: a profile cannot extend itself")
            else:
                parent = _read_toml(parent_path)
                if "extends" in parent:
                    problems.append(f"extends: {parent_name!r} extends another profile; only one level is allowed")
                else:
                    # The parent's own mistakes count here too: a typo in it must not weaken this profile.
                    parent_problems: list[str] = []
                    _check_shape(parent, parent_problems)
                    problems += [f"extends {parent_name}: {problem}" for problem in parent_problems]
                    data = _merge(parent, data)
    if problems:
        raise ProfileError(f"{path}: invalid profile", problems=problems)
    profile = _build(path, data, problems)
    if problems:
        raise ProfileError(f"{path}: invalid profile", problems=problems)
    assert profile is not None
    return profile


def _check_shape(data: dict[str, Any], problems: list[str]) -> None:
    """Unknown tables and keys, and wrong value types."""
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SCHEMA or key == "":
                problems.append(f"{key}: unknown table")
                continue
            for sub, subvalue in value.items():
                _check_value(f"{key}.{sub}", _SCHEMA[key].get(sub), subvalue, problems)
        else:
            _check_value(key, _SCHEMA[""].get(key), value, problems)


def _check_value(dotted: str, spec: tuple[Any, bool] | None, value: Any, problems: list[str]) -> None:
    if spec is None:
        problems.append(f"{dotted}: unknown key")
        return
    expected = spec[0]
    # bool is a subclass of int in Python; a profile that says `validity_days = true` is wrong.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        name = {int: "a whole number", str: "text", bool: "true or false", list: "a list"}.get(expected, "?")
        problems.append(f"{dotted}: must be {name}")
    elif expected is list and not all(isinstance(item, str) for item in value):
        problems.append(f"{dotted}: must be a list of text values")


def _names(data: dict[str, Any], table: str, key: str) -> tuple[str, ...]:
    value = data.get(table, {}).get(key, [])
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _build(path: Path, data: dict[str, Any], problems: list[str]) -> Profile | None:
    """The Profile ``data`` describes, or None with every reason added to ``problems``."""
    _require(data, problems)
    if problems:
        return None
    if data["schema"] != 1:
        problems.append("schema: only schema 1 is understood by this privca")
    if data["kind"] != "leaf":
        problems.append("kind: must be \"leaf\"")
    validity, max_validity = _validity(data, problems)
    key_allowed, issuer_algorithms = _keys(data, problems)
    ku, ku_rsa, ku_ec = _key_usages(data, key_allowed, problems)
    eku = _extended_key_usages(data, problems)
    san_types, max_san = _san(data, problems)
    keep = _subject_keep(data, problems)
    source = _source(path, data, problems)
    if problems:
        return None
    san, subject, revocation = data.get("san", {}), data.get("subject", {}), data.get("revocation", {})
    return Profile(
        name=path.stem,
        description=data["description"],
        source=source,
        validity_days=validity,
        max_validity_days=max_validity,
        products=tuple(data.get("products", ())),
        key_allowed=key_allowed,
        issuer_algorithms=issuer_algorithms,
        key_usage=ku,
        key_usage_rsa_add=ku_rsa,
        key_usage_ec_add=ku_ec,
        key_usage_critical=data["key_usage"].get("critical", True),
        eku=eku,
        eku_critical=data["extended_key_usage"].get("critical", False),
        san_required=san.get("required", True),
        san_types=san_types,
        allow_wildcards=san.get("allow_wildcards", False),
        max_san_length=max_san,
        cn_must_be_in_san=san.get("cn_must_be_in_san", True),
        allow_special_ips=san.get("allow_special_ips", False),
        subject_keep=keep,
        require_cn=subject.get("require_cn", True),
        crl_distribution_point=revocation.get("crl_distribution_point", True),
        ocsp=revocation.get("ocsp", False),
    )


def _require(data: dict[str, Any], problems: list[str]) -> None:
    """Every required table and key is there."""
    for table, keys in _SCHEMA.items():
        scope = data if table == "" else data.get(table)
        if scope is None:
            if any(required for _, required in keys.values()):
                problems.append(f"{table}: missing table")
            continue
        for key, (_, required) in keys.items():
            if required and key not in scope and key != "extends":
                problems.append(f"{(table + '.') if table else ''}{key}: missing")


def _validity(data: dict[str, Any], problems: list[str]) -> tuple[int, int]:
    validity = data["validity_days"]
    max_validity = data.get("max_validity_days", validity)
    if not 1 <= validity <= 3650:
        problems.append("validity_days: must be between 1 and 3650")
    if not validity <= max_validity <= 3650:
        problems.append("max_validity_days: must be between validity_days and 3650")
    return validity, max_validity


def _keys(data: dict[str, Any], problems: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The subject key types allowed, and the algorithms an issuing CA may have."""
    key_allowed = _names(data, "key", "allowed")
    for item in key_allowed:
        if item not in KEY_TYPES:
            problems.append(f"key.allowed: {item!r} is not one of {', '.join(KEY_TYPES)}")
    if not key_allowed:
        problems.append("key.allowed: must name at least one key type")
    issuer_algorithms = _names(data, "issuer", "allowed_algorithms") or ("rsa", "ec")
    for item in issuer_algorithms:
        if item not in ("rsa", "ec"):
            problems.append(f"issuer.allowed_algorithms: {item!r} is not rsa or ec")
    return key_allowed, issuer_algorithms


def _key_usages(data: dict[str, Any], key_allowed: tuple[str, ...], problems: list[str]
                ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``key_usage.values``, ``rsa_add`` and ``ec_add``: known leaf usages that fit the key types."""
    ku, ku_rsa, ku_ec = (_names(data, "key_usage", k) for k in ("values", "rsa_add", "ec_add"))
    lists = (("values", ku), ("rsa_add", ku_rsa), ("ec_add", ku_ec))
    for key_name, values in lists:
        for item in values:
            if item not in KEY_USAGES:
                problems.append(f"key_usage.{key_name}: unknown key usage {item!r}")
            elif item in LEAF_FORBIDDEN_KEY_USAGES:
                problems.append(f"key_usage.{key_name}: {item} is for CA certificates, never for a leaf")
    if not ku:
        problems.append("key_usage.values: must name at least one key usage")
    allows_ec = any(item.startswith("ec:") for item in key_allowed)
    allows_rsa = any(item.startswith("rsa:") for item in key_allowed)
    if "keyEncipherment" in ku_ec or ("keyEncipherment" in ku and allows_ec):
        problems.append("key_usage: keyEncipherment only fits RSA keys; put it in rsa_add")
    for item in sorted(EC_IMPOSSIBLE_KEY_USAGES - {"keyEncipherment"}):
        if item in ku_ec or (item in ku and allows_ec):
            problems.append(f"key_usage: {item} only fits RSA keys (an EC key never encrypts); put it in rsa_add")
    for item in sorted(RSA_IMPOSSIBLE_KEY_USAGES):
        if item in ku_rsa or (item in ku and allows_rsa):
            problems.append(f"key_usage: {item} does not fit RSA keys (they cannot do key agreement); put it in ec_add")
    for only in ("encipherOnly", "decipherOnly"):
        # RFC 5280 4.2.1.3: these qualify keyAgreement and mean nothing (and cannot be encoded) without it.
        for key_name, values in lists:
            if only in values and "keyAgreement" not in set(ku) | set(values):
                problems.append(f"key_usage.{key_name}: {only} needs keyAgreement beside it (RFC 5280 4.2.1.3)")
    return ku, ku_rsa, ku_ec


def _extended_key_usages(data: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    eku = _names(data, "extended_key_usage", "values")
    for item in eku:
        if item not in EXTENDED_KEY_USAGES:
            problems.append(f"extended_key_usage.values: unknown extended key usage {item!r}")
        elif item in LEAF_FORBIDDEN_EKUS:
            problems.append(f"extended_key_usage.values: {item} is never granted to a leaf (a leaf with it could "
                            "vouch for what its CA alone may); privca issues TLS server and client certificates")
    if not eku:
        problems.append("extended_key_usage.values: must name at least one extended key usage")
    return eku


def _san(data: dict[str, Any], problems: list[str]) -> tuple[tuple[str, ...], int]:
    """The SAN types issued, and the most SAN text allowed (Expressway's 999 characters by default)."""
    san_types = _names(data, "san", "types") or ("dns",)
    for item in san_types:
        if item not in SAN_TYPES:
            problems.append(f"san.types: {item!r} is not one of {', '.join(SAN_TYPES)}")
    san = data.get("san", {})
    max_san = san.get("max_total_length", MAX_SAN_TEXT)
    if isinstance(max_san, int) and not 1 <= max_san <= 65535:
        problems.append("san.max_total_length: must be between 1 and 65535")
    if not data.get("subject", {}).get("require_cn", True) and not san.get("required", True):
        problems.append("subject.require_cn and san.required: a leaf needs a subject CN or a SAN; require one")
    return san_types, max_san


def _subject_keep(data: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    keep = _names(data, "subject", "keep") or ("CN", "O", "OU", "L", "ST", "C")
    for item in keep:
        if item not in SUBJECT_ATTRIBUTES:
            problems.append(f"subject.keep: {item!r} is not one of {', '.join(SUBJECT_ATTRIBUTES)}")
    return keep


def _source(path: Path, data: dict[str, Any], problems: list[str]) -> str:
    """``shipped``, or the path of a store profile; one that takes a shipped profile's name must say so."""
    shipped_dir = shipped_profiles_dir().resolve()
    source = "shipped" if path.parent.resolve() == shipped_dir else str(path)
    shadows = source != "shipped" and (shipped_dir / path.name).is_file()
    if shadows and data.get("replaces_shipped") is not True:
        problems.append(f"{path.stem}: a shipped profile has this name; rename the file, or add "
                        "replaces_shipped = true to use it in place of the shipped one")
    elif not shadows and data.get("replaces_shipped"):
        problems.append("replaces_shipped: no shipped profile has this name")
    return source
