"""voice path: per-turn latency and per-call latency percentiles

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turn", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latency_ms", sa.Float(), nullable=True))
    with op.batch_alter_table("call_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latency_p50_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("latency_p95_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_attempt", schema=None) as batch_op:
        batch_op.drop_column("latency_p95_ms")
        batch_op.drop_column("latency_p50_ms")
    with op.batch_alter_table("turn", schema=None) as batch_op:
        batch_op.drop_column("latency_ms")
