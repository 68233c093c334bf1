"""`backoffice keys`: the encryption-at-rest key ring."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment

keys_app = typer.Typer(help="Encryption-at-rest keys: generate, show, rotate.",
                       no_args_is_help=True)
console = Console(stderr=True)


@keys_app.command("generate")
def keys_generate(
    kid: Annotated[str | None, typer.Option(help="Prefix the key with `KID:`.")] = None,
) -> None:
    """Print a new random 256-bit key (base64) for BACKOFFICE_ENCRYPTION_KEY."""
    from backoffice.crypto import generate_key

    key = generate_key()
    sys.stdout.write((f"{kid}:{key}" if kid else key) + "\n")


@keys_app.command("show")
def keys_show() -> None:
    """Show the configured key ring: kids, key checks, which is primary (never the keys)."""
    apply_environment()
    from backoffice.crypto import active_keyring

    ring = active_keyring()
    if ring is None:
        console.print("encryption at rest is off (no BACKOFFICE_ENCRYPTION_KEY[_FILE])")
        return
    table = Table(title="Encryption key ring")
    for col in ("kid", "check", "bits", "primary"):
        table.add_column(col)
    for k in ring.describe():
        table.add_row(k["kid"], k["check"], str(k["bits"]), "yes" if k["primary"] else "")
    Console().print(table)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.")] = 500,
) -> None:
    """Re-encrypt every encrypted value (and any plaintext one) under the primary key.

    Afterwards the old keys can be removed from the key ring. Safe to run again.
    """
    settings = apply_environment()
    from backoffice.crypto import EncryptionError
    from backoffice.runtime import get_db
    from backoffice.store import rotate_encryption

    try:
        result = rotate_encryption(get_db(settings), batch_size=batch_size)
    except EncryptionError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    sys.stdout.write(json.dumps(result) + "\n")
