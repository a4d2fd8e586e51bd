"""Jinja2 rendering of the instruction and configuration files shipped under ``templates/<peer>/``.

``StrictUndefined`` turns a missing value into an error instead of an empty string: an instruction with a blank
where a fingerprint should be is worse than no instruction. Templates get data only; they cannot read the
environment or files.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


def ios_fingerprint(colon_separated: str) -> str:
    """A fingerprint the way IOS-XE prints it at ``crypto pki authenticate``: groups of 8 hex digits."""
    digits = colon_separated.replace(":", "")
    return " ".join(digits[i:i + 8] for i in range(0, len(digits), 8))


def ios_name(ca_name: str) -> str:
    """The IOS-XE trustpoint of a CA: ``PRIVCA-ROOT-1`` for ledger name ``root-1``."""
    return "PRIVCA-" + ca_name.upper()


@lru_cache(maxsize=1)
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("privca.exporters", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown and IOS configuration, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ios_fingerprint"] = ios_fingerprint
    env.filters["ios_name"] = ios_name
    return env


def render(template: str, **context: Any) -> bytes:
    """Render ``templates/<template>`` to UTF-8 bytes. A value the template needs but was not given raises
    jinja2's UndefinedError: that is a privca bug, and it shows as one."""
    text: str = environment().get_template(template).render(**context)
    return text.encode()
