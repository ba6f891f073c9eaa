"""Candidates: functional hash and per-stage cascade results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("functional_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stages", sa.JSON, nullable=True))
    op.create_index("ix_candidates_run_fhash", "candidates", ["run_id", "functional_hash"])


def downgrade() -> None:
    op.drop_index("ix_candidates_run_fhash", table_name="candidates")
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("stages")
        batch.drop_column("functional_hash")
