"""CA keys held in a hardware security module (or any PKCS#11 token, such as SoftHSM2).

A token key is presented to ``cryptography`` as a subclass of its ``RSAPrivateKey`` / ``EllipticCurvePrivateKey``
interfaces whose ``sign`` asks the token to sign. Every builder (certificates, CRLs, OCSP responses) then works
unchanged, and the private key never leaves the token.

Portability choices:
- Digests are computed here and the token is asked for the raw mechanism (``CKM_RSA_PKCS`` with the DigestInfo,
  ``CKM_RSA_PKCS_PSS``, ``CKM_ECDSA``). HSMs commonly offer these, while hash-and-sign mechanisms such as
  ``CKM_ECDSA_SHA256`` are missing on some (SoftHSM 2.6), and some tokens cap the data one ``C_Sign`` accepts,
  which a large CRL would exceed.
- Tokens are found by label, never by slot number: slot numbers change when a token is initialised or a device
  is added.
- A wrong PIN is reported once and never retried: real HSMs lock the user after a few failures.
- One logged-in session per token and process, used under a lock: a PKCS#11 session runs one operation at a
  time, and a threaded server (an OCSP responder) signs from several threads.

Keys are named by RFC 7512 PKCS#11 URIs, the form ``p11tool`` and OpenSSL's pkcs11 providers use:
``pkcs11:token=UC%20CA;object=privca%20root-1%209f3c21ab;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so``.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15, PSS
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from privca.errors import KeyMaterialError, UsageError
from privca.keys.material import TOKEN_REF_SCHEME

if TYPE_CHECKING:
    from collections.abc import Callable

    from privca.keys.material import KeySpec, Passphrase

    PinSource = Callable[[], Passphrase]

MODULE_ENV = "PRIVCA_PKCS11_MODULE"
PIN_ENV = "PRIVCA_PKCS11_PIN"

# DER of DigestInfo up to the digest itself, per hash (RFC 8017 section 9.2, note 1). CKM_RSA_PKCS signs exactly
# what it is given, so EMSA-PKCS1-v1_5 needs this prefix in front of the digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# CKA_EC_PARAMS of the named curves privca uses: the DER of each curve's OID (RFC 5480 section 2.1.1.1).
_CURVE_PARAMS = {"secp256r1": bytes.fromhex("06082a8648ce3d030107"), "secp384r1": bytes.fromhex("06052b81040022")}
_CURVES = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}


# --- RFC 7512 URIs ------------------------------------------------------------------------------------------

# Characters RFC 7512 section 2.3 allows unescaped in path values (pk11-pchar) and query values (pk11-qchar).
_PATH_SAFE = ":[]@!$'()*+,="
_QUERY_SAFE = ":[]/?|+$!"


@dataclass(frozen=True)
class TokenKeyRef:
    """Where a CA key is: the PKCS#11 module, the token's label and the key's label."""

    module: str
    token: str
    label: str

    def uri(self) -> str:
        path = f"token={quote(self.token, safe=_PATH_SAFE)};object={quote(self.label, safe=_PATH_SAFE)};type=private"
        return f"{TOKEN_REF_SCHEME}{path}?module-path={quote(self.module, safe=_QUERY_SAFE)}"

    @classmethod
    def parse(cls, uri: str) -> "TokenKeyRef":
        if not uri.startswith(TOKEN_REF_SCHEME):
            raise KeyMaterialError(f"{uri}: not a PKCS#11 URI")
        path, _, query = uri[len(TOKEN_REF_SCHEME):].partition("?")
        values = {}
        for part in [*path.split(";"), *query.split("&")]:
            name, _, value = part.partition("=")
            values[name] = unquote(value)
        if not values.get("token") or not values.get("object"):
            raise KeyMaterialError(f"{uri}: a CA key URI needs token= and object=")
        return cls(values.get("module-path", ""), values["token"], values["object"])


def module_path(option: str | None, stored: str | None = None) -> str:
    """The module to load: ``--pkcs11-module``, else $PRIVCA_PKCS11_MODULE, else the one recorded in the store."""
    chosen = option or os.environ.get(MODULE_ENV) or stored
    if not chosen:
        raise UsageError(f"--pkcs11-module: needed for a token (or set {MODULE_ENV}), e.g. "
                         "/usr/lib/softhsm/libsofthsm2.so")
    return os.path.abspath(chosen)


# --- sessions -------------------------------------------------------------------------------------------------

class TokenSession:
    """The one logged-in read/write session this process has on a token; ``lock`` serialises its use."""

    def __init__(self, session: Any, token_label: str) -> None:
        self.session = session
        self.token_label = token_label
        self.lock = threading.Lock()


_sessions: dict[tuple[str, str], TokenSession] = {}
_sessions_lock = threading.Lock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise KeyMaterialError("PKCS#11 support is not installed; run: pip install 'privca[hsm]'") from None
    return pkcs11


def open_token(module: str, token_label: str, pin: PinSource) -> TokenSession:
    """The session on ``token_label``, logging in with ``pin()`` the first time; one attempt, never retried."""
    if not os.path.isfile(module):
        raise KeyMaterialError(f"PKCS#11 module {module}: no such file; check --pkcs11-module or {MODULE_ENV}")
    # A module is initialised once per process, whatever name (a symbolic link, say) it is reached by.
    real_module = os.path.realpath(module)
    with _sessions_lock:
        found = _sessions.get((real_module, token_label))
        if found is not None:
            return found
        pkcs11 = _pkcs11()
        try:
            lib = pkcs11.lib(real_module)
        except pkcs11.PKCS11Error as exc:
            raise KeyMaterialError(f"PKCS#11 module {module}: cannot be loaded ({exc})") from None
        try:
            token = lib.get_token(token_label=token_label)
        except pkcs11.NoSuchToken:
            labels = sorted(t.label for t in lib.get_tokens() if t.label)
            seen = ", ".join(repr(label) for label in labels) or "none"
            raise KeyMaterialError(
                f"token {token_label!r}: not found through {module} (tokens there: {seen}); check --token-label, "
                "that the device is connected, and for SoftHSM2 the SOFTHSM2_CONF variable"
            ) from None
        except pkcs11.MultipleTokensReturned:
            raise KeyMaterialError(f"token {token_label!r}: several tokens have this label; relabel one") from None
        try:
            try:
                user_pin = pin().reveal().decode()
            except UnicodeDecodeError:
                raise KeyMaterialError(f"token {token_label!r}: the PIN is not UTF-8 text") from None
            session = token.open(rw=True, user_pin=user_pin)
        except pkcs11.PinIncorrect:
            raise KeyMaterialError(
                f"token {token_label!r}: the PIN was not accepted; privca does not retry because HSMs lock the "
                "user after a few failures; check the PIN before trying again"
            ) from None
        except pkcs11.PinLocked:
            raise KeyMaterialError(f"token {token_label!r}: the user PIN is locked; the token's security officer "
                                   "must unlock or reset it") from None
        except (pkcs11.PinExpired, pkcs11.UserPinNotInitialized):
            raise KeyMaterialError(f"token {token_label!r}: the user PIN is expired or not set; set it with the "
                                   "token's own tool first") from None
        except (pkcs11.PinLenRange, pkcs11.PinInvalid):
            raise KeyMaterialError(f"token {token_label!r}: the PIN has a length or characters the token "
                                   "does not accept") from None
        except pkcs11.PKCS11Error as exc:
            raise KeyMaterialError(f"token {token_label!r}: cannot log in ({type(exc).__name__})") from None
        opened = TokenSession(session, token_label)
        _sessions[(real_module, token_label)] = opened
        return opened


# --- keys in a token --------------------------------------------------------------------------------------------

class _TokenKey:
    """What every token key refuses: its secret never leaves the token."""

    _token: TokenSession
    _label: str

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise KeyMaterialError(f"key {self._label!r} in token {self._token.token_label!r}: is kept in the token "
                               "and cannot be exported or used for anything but signing")

    private_bytes = private_numbers = _refuse

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def _digest(self, data: bytes | bytearray | memoryview, algorithm: Any) -> bytes:
        if not isinstance(algorithm, hashes.HashAlgorithm) or algorithm.name not in _DIGEST_INFO:
            raise KeyMaterialError(f"key {self._label!r}: signing with {getattr(algorithm, 'name', algorithm)} is "
                                   "not supported; privca signs with SHA-256, SHA-384 or SHA-512")
        digest = hashes.Hash(algorithm)
        digest.update(data)
        return digest.finalize()

    def _token_sign(self, private: Any, payload: bytes, **mechanism: Any) -> bytes:
        pkcs11 = _pkcs11()
        try:
            with self._token.lock:
                return bytes(private.sign(payload, **mechanism))
        except pkcs11.PKCS11Error as exc:
            raise KeyMaterialError(f"key {self._label!r} in token {self._token.token_label!r}: the token refused to "
                                   f"sign ({type(exc).__name__})") from None


class TokenRSAKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA CA key in a token: PKCS#1 v1.5 and PSS signatures."""

    def __init__(self, token: TokenSession, label: str, private: Any, public: rsa.RSAPublicKey) -> None:
        self._token, self._label, self._private, self._public = token, label, private, public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    decrypt = _TokenKey._refuse

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes:
        Mechanism = _pkcs11().Mechanism
        digest = self._digest(data, algorithm)
        if isinstance(padding, PKCS1v15):
            return self._token_sign(self._private, _DIGEST_INFO[algorithm.name] + digest, mechanism=Mechanism.RSA_PKCS)
        if isinstance(padding, PSS):
            return self._token_sign(self._private, digest, mechanism=Mechanism.RSA_PKCS_PSS,
                                    mechanism_param=self._pss_params(padding, algorithm))
        raise KeyMaterialError(f"key {self._label!r}: RSA padding {padding.name} is not supported for signing")

    def _pss_params(self, pss: PSS, algorithm: hashes.HashAlgorithm) -> tuple[Any, Any, int]:
        pkcs11 = _pkcs11()
        # cryptography has no public accessor for the PSS salt length or the MGF1 hash; these are its own fields.
        salt = pss._salt_length
        mgf_hash = pss.mgf._algorithm.name
        if salt is PSS.DIGEST_LENGTH:
            salt = algorithm.digest_size
        elif salt is PSS.MAX_LENGTH:
            salt = (self.key_size + 7) // 8 - algorithm.digest_size - 2
        elif not isinstance(salt, int):
            raise KeyMaterialError(f"key {self._label!r}: PSS salt length AUTO is only for verifying")
        names = {"sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}
        if mgf_hash not in names:
            raise KeyMaterialError(f"key {self._label!r}: MGF1 with {mgf_hash} is not supported")
        return (pkcs11.Mechanism[names[algorithm.name]], pkcs11.MGF[names[mgf_hash]], salt)


class TokenECKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An EC CA key in a token: ECDSA, returned in the DER form X.509 needs."""

    def __init__(self, token: TokenSession, label: str, private: Any, public: ec.EllipticCurvePublicKey) -> None:
        self._token, self._label, self._private, self._public = token, label, private, public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    exchange = _TokenKey._refuse

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: Any) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyMaterialError(f"key {self._label!r}: only ECDSA signatures are supported")
        digest = self._digest(data, signature_algorithm.algorithm)
        raw = self._token_sign(self._private, digest, mechanism=_pkcs11().Mechanism.ECDSA)
        # CKM_ECDSA returns r || s, two halves of equal length; X.509 wants the DER Ecdsa-Sig-Value
        # SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 section 2.2.3).
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


TokenKey = TokenRSAKey | TokenECKey


def _public_key(pkcs11: Any, public: Any) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The public half as a cryptography key, read from the token's public key object."""
    attribute, key_type = pkcs11.Attribute, public.key_type
    if key_type == pkcs11.KeyType.RSA:
        modulus, exponent = public[attribute.MODULUS], public[attribute.PUBLIC_EXPONENT]
        return rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big")).public_key()
    if key_type == pkcs11.KeyType.EC:
        params = bytes(public[attribute.EC_PARAMS])
        name = next((name for name, der in _CURVE_PARAMS.items() if der == params), None)
        if name is None:
            raise KeyMaterialError(f"key {public.label!r}: its curve is not supported; a CA key must be on "
                                   f"{' or '.join(_CURVES)}")
        curve = _CURVES[name]
        point = bytes(public[attribute.EC_POINT])
        # PKCS#11 says CKA_EC_POINT is the DER OCTET STRING around the point; some HSMs give the bare point.
        size = 1 + 2 * ((curve.key_size + 7) // 8)
        if len(point) != size:
            point = point[2:] if point[:1] == b"\x04" and point[1] == len(point) - 2 else b""
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        except ValueError:
            raise KeyMaterialError(f"key {public.label!r}: the token's public key point cannot be read") from None
    raise KeyMaterialError(f"key {public.label!r}: key type {key_type.name} cannot be a CA key")


def load_key(ref: TokenKeyRef, pin: PinSource) -> TokenKey:
    """The key ``ref.label`` in the token: its private object for signing and its public object's key."""
    token = open_token(ref.module, ref.token, pin)
    pkcs11 = _pkcs11()
    with token.lock:
        halves = []
        for object_class in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY):
            kind = object_class.name.lower().replace("_", " ")
            try:
                halves.append(token.session.get_key(object_class=object_class, label=ref.label))
            except pkcs11.NoSuchKey:
                raise KeyMaterialError(f"token {ref.token!r}: no {kind} labelled {ref.label!r}; check the key "
                                       "label (a CA key needs its private and public objects under one label)") from None
            except pkcs11.MultipleObjectsReturned:
                raise KeyMaterialError(f"token {ref.token!r}: several {kind}s are labelled {ref.label!r}; "
                                       "relabel them so each CA key has its own label") from None
        private, public = halves
        public_key = _public_key(pkcs11, public)
    key: TokenKey
    if isinstance(public_key, rsa.RSAPublicKey):
        key = TokenRSAKey(token, ref.label, private, public_key)
    else:
        key = TokenECKey(token, ref.label, private, public_key)
    _prove_pair(key, ref)
    return key


def _prove_pair(key: TokenKey, ref: TokenKeyRef) -> None:
    """Sign once and verify with the public object: the two objects under one label might not be one key pair,
    and certificates signed with a mismatched key would be worthless."""
    from cryptography.exceptions import InvalidSignature

    message = b"privca: does this private key belong to this public key?"
    try:
        if isinstance(key, TokenRSAKey):
            key.public_key().verify(key.sign(message, PKCS1v15(), hashes.SHA256()), message, PKCS1v15(),
                                    hashes.SHA256())
        else:
            key.public_key().verify(key.sign(message, ec.ECDSA(hashes.SHA256())), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise KeyMaterialError(f"token {ref.token!r}: the private and public keys labelled {ref.label!r} are not "
                               "one key pair; fix the labels with the token's own tool") from None


def generate_key(module: str, token_label: str, name: str, spec: "KeySpec", pin: PinSource) -> TokenKeyRef:
    """A new key pair in the token: private half sensitive, never extractable, signing only, kept on the token.

    The label is the CA name and a random suffix, so several stores can share one token without clashes.
    """
    token = open_token(module, token_label, pin)
    pkcs11 = _pkcs11()
    attribute = pkcs11.Attribute
    label = f"privca {name} {secrets.token_hex(4)}"
    key_id = secrets.token_bytes(16)  # CKA_ID pairs the two halves for tools that match by id
    private_template = {attribute.TOKEN: True, attribute.PRIVATE: True, attribute.SENSITIVE: True,
                        attribute.EXTRACTABLE: False}
    public_template = {attribute.TOKEN: True, attribute.PRIVATE: False}
    options = dict(id=key_id, label=label, store=True,
                   capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
                   private_template=private_template, public_template=public_template)
    try:
        with token.lock:
            if spec.algorithm == "rsa":
                token.session.generate_keypair(pkcs11.KeyType.RSA, int(spec.param), **options)
            else:
                params = token.session.create_domain_parameters(
                    pkcs11.KeyType.EC, {attribute.EC_PARAMS: _CURVE_PARAMS[spec.param]}, local=True)
                params.generate_keypair(**options)
    except pkcs11.PKCS11Error as exc:
        raise KeyMaterialError(f"token {token_label!r}: cannot generate a {spec} key ({type(exc).__name__}); "
                               "see docs/hsm.md for the key types each HSM offers") from None
    return TokenKeyRef(module, token_label, label)


def destroy_key(ref: TokenKeyRef, pin: PinSource) -> None:
    """Remove both halves of a key privca generated moments ago (an ``init`` that failed after generating it)."""
    token = open_token(ref.module, ref.token, pin)
    with token.lock:
        for found in list(token.session.get_objects({_pkcs11().Attribute.LABEL: ref.label})):
            found.destroy()
