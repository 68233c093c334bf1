"""Named reviewers and four eyes (#17): ``reviewer`` and ``review_proposal``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Plain SQLAlchemy types only: a revision never imports the models. Tables a store has
already (made by ``create_all`` before this revision) are left as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _has(table: str) -> bool:
    return not op.get_context().as_sql and sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _has("reviewer") and _has("review_proposal"):
        return
    op.create_table('reviewer',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('roles', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('key_hash', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('review_proposal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('maker', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('needs', sa.JSON(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=True),
    sa.Column('failing', sa.JSON(), nullable=True),
    sa.Column('proposal', sa.JSON(), nullable=True),
    sa.Column('basis', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checker', sa.String(length=100), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['claim_case.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['document.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_proposal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_proposal_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_proposal_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_proposal_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('review_proposal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_proposal_status'))
        batch_op.drop_index(batch_op.f('ix_review_proposal_document_id'))
        batch_op.drop_index(batch_op.f('ix_review_proposal_case_id'))

    op.drop_table('review_proposal')
    op.drop_table('reviewer')
