"""Identity cases and the keyed, erasure-safe audit trail (#16, #17).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

``claim_case.kind`` (claim | identity: an ID card's front and back paired), and on
``auditevent`` what hashed each event (``scheme``), the digest its hash covers instead of
the data (``data_digest``) and that digest's salt (``data_salt``, dropped by an erasure).
Columns a store made by ``create_all`` between those changes and migrations has already
are left as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_AUDIT = (("scheme", 48), ("data_digest", 64), ("data_salt", 32))


def _missing(table: str, names: list[str]) -> list[str]:
    if op.get_context().as_sql:
        return names
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    return [n for n in names if n not in have]


def upgrade() -> None:
    todo = _missing("auditevent", [n for n, _ in _AUDIT])
    if todo:
        with op.batch_alter_table("auditevent") as batch:
            for name, length in _AUDIT:
                if name in todo:
                    batch.add_column(sa.Column(name, sa.String(length), nullable=True))
    if _missing("claim_case", ["kind"]):
        with op.batch_alter_table("claim_case") as batch:
            batch.add_column(sa.Column("kind", sa.String(20), nullable=False,
                                       server_default="claim"))
        # Existing cases are claims; new rows get the model's default.
        with op.batch_alter_table("claim_case") as batch:
            batch.alter_column("kind", server_default=None, existing_type=sa.String(20),
                               existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("claim_case") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("auditevent") as batch:
        for name, _ in reversed(_AUDIT):
            batch.drop_column(name)
