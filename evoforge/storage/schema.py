"""Table definitions (SQLAlchemy Core). Alembic migrations must match these."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("problem", sa.String(500), nullable=False),
    sa.Column("problem_path", sa.Text, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, default="created"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("elapsed_seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("proposer_stats", sa.JSON, nullable=True),
    sa.Column("summary", sa.JSON, nullable=True),
    # counters that processes sharing the run update atomically (the run row is the lock)
    sa.Column("next_seq", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("claimed", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("synced", sa.BigInteger, nullable=False, server_default=sa.text("0")),
)

# program text, stored once per distinct text (candidates refer to it by id)
programs = sa.Table(
    "programs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("code", sa.Text, nullable=False),
)

# one row per process working on a run: its pending candidates are its own until expiry
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

candidates = sa.Table(
    "candidates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("island", sa.Integer, nullable=False),
    sa.Column("parent_ids", sa.JSON, nullable=False),
    sa.Column("operator", sa.String(100), nullable=False),
    sa.Column("program_id", sa.Integer,
              sa.ForeignKey("programs.id", name="fk_candidates_program"), nullable=False),
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
    sa.Column("functional_hash", sa.String(64), nullable=True),
    sa.Column("stages", sa.JSON, nullable=True),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("prompt_tokens", sa.Integer, nullable=True),
    sa.Column("completion_tokens", sa.Integer, nullable=True),
    sa.Column("cost", sa.Float, nullable=True),
    # commit order of finished candidates within the run, for incremental sync
    sa.Column("sync_seq", sa.BigInteger, nullable=True),
    # the process that proposed a pending candidate, and whether it holds a budget claim
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("claimed", sa.Boolean, nullable=True),
    sa.UniqueConstraint("run_id", "seq", name="uq_candidates_run_seq"),
    sa.Index("ix_candidates_run_hash", "run_id", "code_hash"),
    sa.Index("ix_candidates_run_status", "run_id", "status"),
    sa.Index("ix_candidates_run_fitness", "run_id", "fitness"),
    sa.Index("ix_candidates_run_fhash", "run_id", "functional_hash"),
    sa.Index("ix_candidates_run_sync", "run_id", "sync_seq"),
    # covers the per-operator counts of status (an index-only scan, not the table)
    sa.Index("ix_candidates_run_operator", "run_id", "operator", "status"),
)
