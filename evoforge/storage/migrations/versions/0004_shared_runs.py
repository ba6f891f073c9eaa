"""Runs shared by several processes: run counters, sync order, owners and leases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# statuses that hold (pending) or used (ok, failed, timeout) an evaluation of the budget
_EVALUATED = "('pending', 'ok', 'failed', 'timeout')"


def upgrade() -> None:
    # plain ALTER TABLE ADD COLUMN, never a batch copy: on SQLite a batch recreates the
    # table, and dropping the old runs table with foreign keys on would cascade-delete
    # every candidate
    op.add_column("runs", sa.Column("next_seq", sa.Integer, nullable=False,
                                    server_default=sa.text("0")))
    op.add_column("runs", sa.Column("claimed", sa.Integer, nullable=False,
                                    server_default=sa.text("0")))
    op.add_column("runs", sa.Column("synced", sa.BigInteger, nullable=False,
                                    server_default=sa.text("0")))
    op.add_column("candidates", sa.Column("sync_seq", sa.BigInteger, nullable=True))
    op.add_column("candidates", sa.Column("owner", sa.String(64), nullable=True))
    op.add_column("candidates", sa.Column("claimed", sa.Boolean, nullable=True))
    op.create_index("ix_candidates_run_sync", "candidates", ["run_id", "sync_seq"])
    op.create_index("ix_candidates_run_operator", "candidates", ["run_id", "operator", "status"])
    op.create_table(
        "leases",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    # existing finished candidates sync in id order; the counters continue from there
    op.execute("UPDATE candidates SET sync_seq = id WHERE status <> 'pending'")
    op.execute(
        "UPDATE runs SET "
        "next_seq = COALESCE((SELECT MAX(seq) + 1 FROM candidates c "
        "WHERE c.run_id = runs.id), 0), "
        "synced = COALESCE((SELECT MAX(sync_seq) FROM candidates c "
        "WHERE c.run_id = runs.id), 0), "
        f"claimed = (SELECT COUNT(*) FROM candidates c WHERE c.run_id = runs.id "
        f"AND c.status IN {_EVALUATED})")
    op.execute(f"UPDATE candidates SET claimed = TRUE WHERE status IN {_EVALUATED}")


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_candidates_run_operator", "candidates")
    op.drop_index("ix_candidates_run_sync", "candidates")
    # ALTER TABLE DROP COLUMN (SQLite 3.35+), for the same reason as in upgrade
    for name in ("claimed", "owner", "sync_seq"):
        op.drop_column("candidates", name)
    for name in ("synced", "claimed", "next_seq"):
        op.drop_column("runs", name)
