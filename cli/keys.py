"""`backoffice keys`: the encryption-at-rest key ring."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment

keys_app = typer.Typer(help="Encryption-at-rest keys: generate, show, rotate, decrypt a file.",
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


def file_sets(settings, extra: list[Path] | None = None) -> list:
    """The folders whose files ``keys rotate`` re-encrypts: the data folder's documents,
    quarantine and reconciliation reports, the drop folders of the file-fed targets, and
    ``extra`` (other reconciliation output folders)."""
    from backoffice.file_crypto import FileSet

    sets = [FileSet("original", settings.documents_dir),
            FileSet("quarantine", settings.quarantine_dir),
            FileSet("export", settings.data_dir / "reconcile")]
    try:
        from backoffice.connectors.config import FileDropTarget, load_targets

        targets = load_targets().targets.values()
    except Exception as exc:  # noqa: BLE001 - a bad targets file is reported, not fatal here
        console.print(f"[yellow]drop folders not rotated: the targets file cannot be read "
                      f"({type(exc).__name__})[/]")
        targets = []
    sets += [FileSet("filedrop", Path(t.directory)) for t in targets
             if isinstance(t, FileDropTarget)]
    sets += [FileSet("export", Path(p)) for p in extra or []]
    return sets


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.")] = 500,
    path: Annotated[list[Path] | None, typer.Option(
        "--path", help="Another folder of reconciliation reports (`reconcile run --out`) "
        "whose exceptions.csv files to re-encrypt; repeatable.")] = None,
) -> None:
    """Re-encrypt every encrypted value (and any plaintext one) under the primary key.

    Rows of the store, originals (in the store and in the local documents folder),
    quarantined files, the drop folders' CSV files and the reconciliation's
    exceptions.csv files. Afterwards the old keys can be removed from the key ring
    (unless files_failed lists files: those still need them). Safe to run again.
    """
    settings = apply_environment()
    from backoffice.crypto import EncryptionError
    from backoffice.runtime import get_db
    from backoffice.store import rotate_encryption

    try:
        result = rotate_encryption(get_db(settings), batch_size=batch_size,
                                   files=file_sets(settings, path))
    except EncryptionError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    sys.stdout.write(json.dumps(result) + "\n")
    if result.get("files_failed"):
        console.print(f"[red]{len(result['files_failed'])} file(s) could not be re-encrypted "
                      "(see files_failed): keep the old keys until they are dealt with[/]")
        raise typer.Exit(1)


@keys_app.command("decrypt-file")
def keys_decrypt_file(
    path: Annotated[Path, typer.Argument(help="A file encrypted at rest: an original, a "
                                         "quarantined file, a drop CSV, an exceptions.csv.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the plaintext here (owner-only, 0600) instead of to stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Print (or write) the plaintext of a file encrypted at rest, with the configured key
    ring. A file that is not encrypted is given as it is. The plaintext holds personal data:
    keep it under the bank's controls and delete it when done."""
    apply_environment()
    from backoffice import file_crypto
    from backoffice.crypto import EncryptionError

    try:
        data = path.read_bytes()
    except OSError as exc:
        console.print(f"[red]{path}: cannot read ({exc.strerror})[/]")
        raise typer.Exit(2) from None
    if file_crypto.is_sealed(data):
        try:
            head = file_crypto.parse_header(data, str(path))
            plain = file_crypto.unseal(data, None, where=str(path))
        except EncryptionError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
        console.print(f"{path}: {head.context}, key {head.kid}")
    else:
        plain = data
        console.print(f"{path}: not encrypted")
    if out is None:
        sys.stdout.buffer.write(plain)
        sys.stdout.flush()
        return
    if out.exists() and not force:
        console.print(f"[red]{out} exists (--force to replace it)[/]")
        raise typer.Exit(2)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(out, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(plain)
    os.chmod(out, 0o600)
