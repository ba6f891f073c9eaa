"""Initial schema: runs and candidates.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("problem", sa.String(500), nullable=False),
        sa.Column("problem_path", sa.Text, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("budget", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("elapsed_seconds", sa.Float, nullable=False),
        sa.Column("proposer_stats", sa.JSON, nullable=True),
        sa.Column("summary", sa.JSON, nullable=True),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("island", sa.Integer, nullable=False),
        sa.Column("parent_ids", sa.JSON, nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("fitness", sa.Float, nullable=True),
        sa.Column("metrics", sa.JSON, nullable=True),
        sa.Column("features", sa.JSON, nullable=True),
        sa.Column("artifacts", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duplicate_of", sa.Integer, nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("eval_seconds", sa.Float, nullable=True),
        sa.UniqueConstraint("run_id", "seq", name="uq_candidates_run_seq"),
    )
    op.create_index("ix_candidates_run_hash", "candidates", ["run_id", "code_hash"])
    op.create_index("ix_candidates_run_status", "candidates", ["run_id", "status"])
    op.create_index("ix_candidates_run_fitness", "candidates", ["run_id", "fitness"])


def downgrade() -> None:
    op.drop_table("candidates")
    op.drop_table("runs")
