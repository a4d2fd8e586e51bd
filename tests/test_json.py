"""One JSON shape: errors under --json are JSON on stderr with the exit code, kinds are stable words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_errors_are_json_on_stderr_under_json(cli: Any, store_path: Path) -> None:
    cases = [(("show", "deadbeef", "--store", store_path, "--json"), 8, "ledger"),
             (("list", "--status", "bogus", "--store", store_path, "--json"), 2, "usage"),
             (("list", "--bogus", "--json"), 2, "usage"),
             (("list", "--store", store_path / "nowhere", "--json"), 3, "store")]
    for args, code, kind in cases:
        result = cli(*args)
        assert result.exit_code == code and result.stdout == "", args
        document = json.loads(result.stderr)
        assert document["schema"] == 1 and document["error"]["kind"] == kind
        assert document["error"]["exit_code"] == code and document["error"]["message"]
    # Negative control: without --json the same error is the one-line text.
    plain = cli("show", "deadbeef", "--store", store_path)
    assert plain.exit_code == 8 and plain.stderr.startswith("Error: serial deadbeef")


def test_error_kinds_are_distinct_words() -> None:
    from privca import errors
    from privca.cli import error_kind

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.PrivcaError)]
    kinds = [error_kind(c) for c in classes]
    assert len(set(kinds)) == len(kinds) and "key_material" in kinds and "usage" in kinds
    assert all(k.replace("_", "").isalpha() and k == k.lower() for k in kinds)
