"""Candidates: the model that wrote them, its tokens and cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("model", sa.String(300), nullable=True))
        batch.add_column(sa.Column("prompt_tokens", sa.Integer, nullable=True))
        batch.add_column(sa.Column("completion_tokens", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cost", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        for name in ("cost", "completion_tokens", "prompt_tokens", "model"):
            batch.drop_column(name)
