"""One ZIP per product, to mail or copy to the administrator of that product as a single attachment.

The archive is reproducible like the rest of the bundle: entries sorted, a fixed timestamp (1980-01-01, the
earliest ZIP can store), 0644 permissions, so the same ledger always gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def zip_name(peer: str) -> str:
    return f"privca-{peer}.zip"


def zipped(files: Mapping[str, bytes], folder: str) -> bytes:
    """``files`` (relative paths) under ``folder/`` in a ZIP, so that unpacking it makes one folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            entry = zipfile.ZipInfo(f"{folder}/{path}", date_time=FIXED_TIME)
            entry.external_attr = 0o100644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return buffer.getvalue()
