"""Program text stored once per distinct text: a programs table that candidates refer to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("code", sa.Text, nullable=False),
    )
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("program_id", sa.Integer, nullable=True))
    conn = op.get_bind()
    programs = sa.table("programs", sa.column("id", sa.Integer), sa.column("sha256"),
                        sa.column("code"))
    known: dict[str, int] = {}
    last = 0
    # in batches by id: a large database is moved without holding it all in memory
    while True:
        rows = conn.execute(sa.text(
            "SELECT id, code FROM candidates WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH}).all()
        if not rows:
            break
        links: list[dict[str, Any]] = []
        for cid, code in rows:
            sha = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
            if sha not in known:
                key = conn.execute(programs.insert().values(sha256=sha, code=code)
                                   .returning(programs.c.id)).scalar_one()
                known[sha] = int(key)
            links.append({"cid": cid, "pid": known[sha]})
        conn.execute(sa.text("UPDATE candidates SET program_id = :pid WHERE id = :cid"), links)
        last = rows[-1][0]
    with op.batch_alter_table("candidates") as batch:
        batch.alter_column("program_id", existing_type=sa.Integer, nullable=False)
        batch.create_foreign_key("fk_candidates_program", "programs", ["program_id"], ["id"])
        batch.drop_column("code")


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("code", sa.Text, nullable=True))
    op.execute("UPDATE candidates SET code = (SELECT p.code FROM programs p "
               "WHERE p.id = candidates.program_id)")
    with op.batch_alter_table("candidates") as batch:
        batch.alter_column("code", existing_type=sa.Text, nullable=False)
        batch.drop_constraint("fk_candidates_program", type_="foreignkey")
        batch.drop_column("program_id")
    op.drop_table("programs")
