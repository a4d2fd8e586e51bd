"""Where revocation information lives: the CRL and OCSP URLs of each CA, and publishing CRLs under those URLs.

A CA's ``crl_url`` goes into the CRL distribution point of every certificate it issues afterwards (RFC 5280
4.2.1.13) and its ``ocsp_url`` into their authority information access (RFC 5280 4.2.2.1). ``publish`` writes
each CA's latest CRL to ``DIR/<URL path>`` so that a web server whose document root is ``DIR`` serves it at
exactly that URL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from privca.authority.ca import check_url, crl_url_for
from privca.errors import OutputError, RevocationError, UsageError
from privca.common.fsutil import atomic_write, check_writable_target, make_output_dirs, refuse_inside_store
from privca.ledger import cas, crls, events
from privca.ledger.records import CARole, CAStatus, Json, iso
from privca.revocation.presign import live_ocsp_cas, presign, write_tree
from privca.revocation.revoke import crl_issuers, crl_pem

if TYPE_CHECKING:
    from privca.keys.keystore import CASecrets, SecretSource
    from privca.ledger.store import Store

CLEAR = "none"  # `--crl-url none` / `--ocsp-url none` remove a URL


def url_path(url: str) -> PurePosixPath:
    """The path part of an http(s) URL as a relative path (``http://h/crl/a.crl`` -> ``crl/a.crl``).

    Raises:
        UsageError: the path is empty or would climb out of the folder it is published under.
    """
    parts = [unquote(part) for part in urlsplit(url).path.split("/") if part]
    if not parts or any(part in (".", "..") or "/" in part or "\\" in part or "\0" in part for part in parts):
        raise UsageError(f"URL {url!r}: needs a plain path such as /crl/issuing-1.crl to publish a file under")
    return PurePosixPath(*parts)


def _check_inside(out_dir: Path, target: Path) -> None:
    """The file must land inside the published folder, even when a sub-folder on the way is a symbolic link."""
    root = out_dir.resolve()
    parent = target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise OutputError(f"{target.parent}: leads outside {out_dir} (a symbolic link); privca publishes only inside it")


def publish(store: "Store", out_dir: Path, *, now: datetime,
            secrets: "CASecrets | SecretSource | None" = None) -> list[Json]:
    """Write each CA's latest CRL to ``out_dir/<path of its CRL URL>`` (DER) and the same name plus ``.pem``,
    and, when ``secrets`` are given, the pre-signed OCSP responses of every CA with an OCSP URL under the path of
    that URL (``privca.revocation.presign``), so that a web server answers OCSP GET requests from files.

    Every CRL target is checked before anything is written. CAs without a CRL URL are reported as skipped.

    Raises:
        RevocationError: a CA has a CRL URL but no signed CRL yet (run ``privca crl``).
        UsageError: no CA has a CRL URL, or two CAs share one.
        OutputError: ``out_dir`` or a target is not writable.
    """
    ledger = store.require_ca()
    refuse_inside_store(out_dir, store.path, "publish folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is not a folder")
    planned: list[tuple[Json, Path, bytes]] = []
    report: list[Json] = []
    problems: list[str] = []
    seen: dict[Path, str] = {}
    for ca in crl_issuers(ledger, now):
        if not ca.crl_url:
            report.append({"ca": ca.name, "crl_url": None, "skipped": "no CRL URL"})
            continue
        crl = crls.latest(ledger, ca.id)
        if crl is None:
            problems.append(f"{ca.name}: no CRL signed yet; run: privca crl")
            continue
        target = out_dir / url_path(ca.crl_url)
        _check_inside(out_dir, target)
        if target in seen:
            raise UsageError(f"{ca.name} and {seen[target]}: share the CRL URL {ca.crl_url}; give each its own")
        seen[target] = ca.name
        for path in (target, target.with_name(target.name + ".pem")):
            check_writable_target(path, overwrite=True)
        item: Json = {"ca": ca.name, "crl_url": ca.crl_url, "crl_number": crl.crl_number,
                      "next_update": iso(crl.next_update), "files": [str(target), str(target) + ".pem"]}
        planned.append((item, target, crl.der))
    if problems:
        raise RevocationError("nothing published", problems=problems)
    # Every OCSP URL, also of CAs that no longer answer: their folders are emptied of what they signed.
    ocsp_urls = sorted({str(ca.ocsp_url) for ca in cas.all_cas(ledger) if ca.ocsp_url}) if secrets is not None else []
    if not planned and not live_ocsp_cas(ledger, now):
        raise UsageError("no CA has a CRL URL; set one with: privca ca set-url --crl-url http://pki.example.com/crl")
    roots: dict[str, PurePosixPath] = {}
    for url in ocsp_urls:
        roots[url] = ocsp_root(url)
        _check_inside(out_dir, out_dir / roots[url] / "x")
    for item, target, der in planned:
        try:
            make_output_dirs(target.parent)
        except OSError as exc:
            raise OutputError(f"{target.parent}: cannot create the folder ({exc.strerror})") from None
        atomic_write(target, der, overwrite=True)
        atomic_write(target.with_name(target.name + ".pem"), crl_pem(der), overwrite=True)
        report.append(item)
    if roots:
        assert secrets is not None
        report.extend(_publish_ocsp(store, out_dir, roots, secrets, now))
    return report


def ocsp_root(url: str) -> PurePosixPath:
    """Where the OCSP responses for ``url`` go inside the published folder: its path, ``.`` for ``http://host/``."""
    return url_path(url) if urlsplit(url).path.strip("/") else PurePosixPath(".")


def _publish_ocsp(store: "Store", out_dir: Path, roots: dict[str, PurePosixPath],
                  secrets: "CASecrets | SecretSource", now: datetime) -> list[Json]:
    """Pre-sign what needs it, copy every response under its OCSP URL's path, and remove the files of
    certificates no longer answered for (expired, or of a CA that was revoked), so a web server cannot go on
    serving a "good" that privca no longer stands behind."""
    responses, counts = presign(store, secrets, now=now)
    written = set(write_tree(responses, out_dir, roots))
    removed = 0
    for root in {out_dir / path for path in roots.values() if path != PurePosixPath(".")}:
        # Only inside a dedicated OCSP folder: with an OCSP URL of "/" the folder holds the CRLs as well.
        for path in sorted(root.rglob("*"), reverse=True):
            if path.is_file() and not path.is_symlink() and path not in written and not path.name.startswith("."):
                path.unlink()
                removed += 1
            elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()
    by_ca: dict[str, tuple[str, set[str], int]] = {}
    for response in responses:
        url, serials, number = by_ca.get(response.ca_name, (response.ocsp_url, set(), 0))
        by_ca[response.ca_name] = (url, serials | {response.serial}, number + 1)
    return [{"ca": name, "ocsp_url": url, "certificates": len(serials), "ocsp_responses": number,
             "signed": counts["signed"], "removed": removed} for name, (url, serials, number) in sorted(by_ca.items())]


def set_urls(
    store: "Store", *, now: datetime, crl_base: str | None = None, ocsp_url: str | None = None,
    ca_name: str | None = None,
) -> list[Json]:
    """Set (or with ``"none"`` clear) the CRL base URL and the OCSP URL of the CAs.

    ``crl_base`` applies to every CA (each CA's CRL is ``<base>/<ca name>.crl``); ``ocsp_url`` to the issuing
    CAs, whose leaves carry it. ``ca_name`` limits both to one CA. Only certificates issued afterwards carry the
    new URLs: keep publishing at the old ones until the older certificates have expired.
    """
    if crl_base is None and ocsp_url is None:
        raise UsageError("set-url: give --crl-url and/or --ocsp-url")
    if crl_base not in (None, CLEAR):
        crl_base = check_url(crl_base, "--crl-url")
    if ocsp_url not in (None, CLEAR):
        ocsp_url = check_url(ocsp_url, "--ocsp-url")
    ledger = store.require_ca()
    changed = []
    with ledger.write():
        every = cas.all_cas(ledger)
        chosen = every if ca_name is None else [ca for ca in every if ca.name == ca_name]
        if not chosen:
            raise UsageError(f"--ca {ca_name!r}: no such CA; choose one of {', '.join(ca.name for ca in every)}")
        for ca in chosen:
            if ca.status is CAStatus.REVOKED:
                continue
            new: dict[str, str | None] = {"crl_url": ca.crl_url, "ocsp_url": ca.ocsp_url}
            if crl_base is not None:
                new["crl_url"] = None if crl_base == CLEAR else crl_url_for(crl_base, ca.name)
            if ocsp_url is not None and (ca_name is not None or ca.role is CARole.ISSUING):
                new["ocsp_url"] = None if ocsp_url == CLEAR else ocsp_url
            old: dict[str, str | None] = {"crl_url": ca.crl_url, "ocsp_url": ca.ocsp_url}
            if new == old:
                continue
            cas.set_urls(ledger, ca.id, new["crl_url"], new["ocsp_url"])
            events.record(ledger, now, "ca-urls", {"ca": ca.name, "before": old, "after": new})
            changed.append({"ca": ca.name, **new})
    return changed
