"""call list by score: an index in the list's order (highest score first, calls without
one last, then newest id), so ``/calls?sort=score`` reads one page instead of sorting
every call (measured with bench/web_bench.py at 100,000 calls on PostgreSQL: the page
query 75 -> 0.1 ms).

SQLite has no ``NULLS LAST`` in an index, and needs none: it sorts NULL lowest, so a
descending index already puts them last.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    nulls = " NULLS LAST" if op.get_bind().dialect.name == "postgresql" else ""
    op.create_index(
        "ix_call_attempt_score",
        "call_attempt",
        [sa.text(f"risk_score DESC{nulls}"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_call_attempt_score", table_name="call_attempt")
