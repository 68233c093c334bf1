"""`backoffice reviewers …`: the named reviewers (``backoffice/reviewers.py``), and how the
other commands learn who is acting.

Mounted by the main CLI with ``app.add_typer(reviewers_app, name="reviewers")``.

A command acting for a reviewer (``review decide|confirm|show --reveal``, ``case
decide|confirm|show --reveal``) takes ``--reviewer ID``; the personal key comes from
``BACKOFFICE_REVIEWER_KEY`` or, when that is not set, a hidden prompt. While the store has no
reviewers (``BACKOFFICE_REVIEWERS=auto``) no key is asked.
"""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment

reviewers_app = typer.Typer(help="Named reviewers: ids, roles and personal keys.",
                            no_args_is_help=True)
err = Console(stderr=True)


def acting(engine, settings, reviewer_id: str | None, doing: str):
    """The identity of the reviewer running this command, or exit 2 with the reason."""
    from backoffice.reviewers import KEY_ENV, IdentityError, identify, mode

    if not (reviewer_id or "").strip():
        err.print(f"[red]{doing} needs --reviewer ID (audited)[/]")
        raise typer.Exit(2)
    key = None
    if mode(engine, settings) == "enforced":
        key = os.environ.get(KEY_ENV) or typer.prompt(
            f"personal key of {reviewer_id.strip().lower()}", hide_input=True, default="",
            show_default=False)
    try:
        return identify(engine, reviewer_id, key or None, settings=settings)
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def show_proposal(out: Console, view, *, yes: bool, refuse: bool) -> None:
    """Print what a maker proposed for the checker and, unless told already, ask to apply
    it (exit 1 when the checker says no)."""
    out.print(f"proposal {view.id} by {view.maker}: {view.decision}"
              + (f" with override of {', '.join(view.failing)}" if view.override
                 and view.failing else "") + f"; needs a second reviewer for "
              f"{', '.join(view.needs)}", markup=False)
    for key, now, new in view.changes:
        out.print(f"  {key}: {now if now is not None else '—'} -> "
                  f"{new if new is not None else '—'}", markup=False)
    if not refuse and not yes and not typer.confirm("confirm and apply it?", default=False):
        err.print("nothing done")
        raise typer.Exit(1)


def _admin(engine, settings, admin_id: str | None):
    from backoffice.reviewers import admin_needed

    if admin_id is None:
        return None
    if not admin_needed(engine):
        return None
    return acting(engine, settings, admin_id, "managing reviewers")


def _print_key(name: str, key: str) -> None:
    """The key alone on the last line of stdout (never wrapped, easy to pipe)."""
    err.print(f"personal key of {name} below: shown once, not stored; hand it over "
              "privately", markup=False, highlight=False)
    sys.stdout.write(key + "\n")


@reviewers_app.command("add")
def reviewers_add(
    reviewer_id: str = typer.Argument(..., help="The staff id (what the reviewer types; "
                                      "the SSO user name behind a proxy)."),
    role: list[str] = typer.Option(..., "--role", help="reviewer | checker | admin "
                                   "(repeatable)."),
    display_name: str | None = typer.Option(None, "--display-name", help="Full name."),
    admin: str | None = typer.Option(None, "--admin", help="The admin doing it (needed "
                                     "once an admin exists; key as for --reviewer)."),
) -> None:
    """Register a reviewer and print their personal key once."""
    settings = apply_environment()
    from backoffice.reviewers import IdentityError, add_reviewer
    from backoffice.runtime import get_db

    engine = get_db(settings)
    try:
        info, key = add_reviewer(engine, reviewer_id, role, display_name=display_name,
                                 admin=_admin(engine, settings, admin))
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    Console(highlight=False).print(f"reviewer {info.name} added, roles "
                                   f"{', '.join(info.roles)}", markup=False)
    _print_key(info.name, key)


@reviewers_app.command("list")
def reviewers_list(
    as_json: bool = typer.Option(False, "--json", help="JSON Lines."),
) -> None:
    """The reviewers, their roles and whether they are active (never keys)."""
    settings = apply_environment()
    from backoffice.reviewers import list_reviewers, mode
    from backoffice.runtime import get_db

    engine = get_db(settings)
    rows = list_reviewers(engine)
    if as_json:
        for r in rows:
            sys.stdout.write(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{len(rows)} reviewer(s); mode {mode(engine, settings)}")
    for col in ("id", "name", "roles", "active", "created", "key set", "disabled"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, r.display_name or "-", ", ".join(r.roles),
                      "yes" if r.active else "no", f"{r.created_at:%Y-%m-%d %H:%M}",
                      f"{r.key_set_at:%Y-%m-%d %H:%M}",
                      f"{r.disabled_at:%Y-%m-%d %H:%M}" if r.disabled_at else "-")
    Console().print(table)


@reviewers_app.command("disable")
def reviewers_disable(
    reviewer_id: str = typer.Argument(..., help="The reviewer."),
    admin: str | None = typer.Option(None, "--admin", help="The admin doing it."),
) -> None:
    """Disable a reviewer (kept for the audit trail; their key stops working)."""
    settings = apply_environment()
    from backoffice.reviewers import IdentityError, disable_reviewer
    from backoffice.runtime import get_db

    engine = get_db(settings)
    try:
        info = disable_reviewer(engine, reviewer_id, admin=_admin(engine, settings, admin))
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    Console(highlight=False).print(f"reviewer {info.name} disabled", markup=False)


@reviewers_app.command("reset-key")
def reviewers_reset_key(
    reviewer_id: str = typer.Argument(..., help="The reviewer."),
    admin: str | None = typer.Option(None, "--admin", help="The admin doing it."),
) -> None:
    """Give a reviewer a new personal key (printed once; the old one stops working)."""
    settings = apply_environment()
    from backoffice.reviewers import IdentityError, reset_key
    from backoffice.runtime import get_db

    engine = get_db(settings)
    try:
        info, key = reset_key(engine, reviewer_id, admin=_admin(engine, settings, admin))
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    _print_key(info.name, key)
