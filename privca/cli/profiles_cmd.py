"""privca profiles: list, show and check issuance profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import JsonOption, StoreOption, open_store, print_json, table

app = typer.Typer(help="""List, show, check and add issuance profiles.

    Examples:

        privca profiles

        privca profiles show expressway-c

        privca profiles check my-profile.toml
    """, no_args_is_help=False)


@app.callback(invoke_without_command=True)
def profiles(ctx: typer.Context, store: StoreOption = None, json_output: JsonOption = False) -> None:
    """List the issuance profiles: the shipped ones and those in the store's profiles/ folder.

    Examples:

        privca profiles

        privca profiles show expressway-c

        privca profiles check my-profile.toml

        privca profiles add my-profile.toml
    """
    if ctx.invoked_subcommand is not None:
        return
    _list(store, json_output)


def _list(store: Path | None, json_output: bool) -> None:
    from privca.common.names import escaped
    from privca.issuance.profiles import available_profiles, load_profile

    target = open_store(store)
    loaded = [load_profile(name, target.profiles_dir) for name in available_profiles(target.profiles_dir)]
    if json_output:
        print_json([p.summary() for p in loaded], "profiles")
        return
    # Which file is in force: a store profile may replace a shipped one of the same name (replaces_shipped).
    table("Profiles", ["name", "EKU", "key types", "days", "from", "description"],
          [[p.name, "+".join(p.eku), ", ".join(p.key_allowed), str(p.validity_days),
            "shipped" if p.source == "shipped" else escaped(p.source), escaped(p.description)] for p in loaded])


@app.command("list")
def list_profiles(store: StoreOption = None, json_output: JsonOption = False) -> None:
    """List the issuance profiles (the same as plain privca profiles).

    Example:

        privca profiles list --json
    """
    _list(store, json_output)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="Profile name.")], store: StoreOption = None,
         json_output: JsonOption = False) -> None:
    """Show what a profile grants.

    Example:

        privca profiles show expressway-server
    """
    from privca.issuance.profiles import load_profile

    summary = load_profile(name, open_store(store).profiles_dir).summary()
    if json_output:
        print_json(summary)
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for sub, subvalue in value.items():
                print(f"  {sub:18} {_text(subvalue)}")
        else:
            print(f"{key:20} {_text(value)}")


def _text(value: object) -> str:
    """A profile value for the terminal: a store profile is a file anyone with store access may have edited."""
    from privca.common.names import escaped

    if isinstance(value, (list, tuple)):
        return escaped(", ".join(str(item) for item in value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escaped(str(value))


@app.command("check")
def check(path: Annotated[Path, typer.Argument(help="A profile TOML file.")], store: StoreOption = None) -> None:
    """Check a custom profile file; every problem is listed. Add good ones with: privca profiles add FILE.

    Example:

        privca profiles check store/profiles/expressway-c-short.toml
    """
    from privca.issuance.profiles import load_profile_file

    profile = load_profile_file(path, open_store(store).profiles_dir)
    print(f"{path}: OK ({profile.name}: EKU {', '.join(profile.eku)}; {profile.validity_days} days)")


@app.command("add")
def add(path: Annotated[Path, typer.Argument(help="A profile TOML file; its file name is the profile name.")],
        force: Annotated[bool, typer.Option("--force", help="Replace a store profile of the same name.")] = False,
        store: StoreOption = None) -> None:
    """Check a custom profile file and copy it into the store's profiles/ folder, owner-only as privca verify expects.

    Example:

        privca profiles add expressway-c-90d.toml
    """
    from privca.common.fsutil import atomic_write
    from privca.errors import UsageError
    from privca.issuance.profiles import load_profile_file, shipped_profiles_dir

    target = open_store(store)
    target.require_ca()
    profile = load_profile_file(path, target.profiles_dir)  # every problem, before anything is written
    if (shipped_profiles_dir() / f"{profile.name}.toml").exists():
        raise UsageError(f"{path}: {profile.name} is a shipped profile; give yours another file name "
                         f"(it may extend {profile.name})")
    # The store is owner-only (privca verify checks it): the copy is 0600 whatever the source file's mode.
    atomic_write(target.profiles_dir / path.name, path.read_bytes(), mode=0o600, overwrite=force)
    print(f"Added profile {profile.name}: EKU {', '.join(profile.eku)}; {profile.validity_days} days "
          f"(use: privca issue CSR --profile {profile.name})")
