"""answer readings: what each callee turn meant, which reading model judged each call, and
the reading model versions that go through four-eyes approval

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("turn", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reading", _JSON, nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("call_attempt", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("nlu_version", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True)
        )
    op.create_table(
        "nlu_model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("archive", sa.LargeBinary(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("report", _JSON, nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    op.create_index("ix_nlu_model_version_state", "nlu_model_version", ["state"])


def downgrade() -> None:
    op.drop_index("ix_nlu_model_version_state", table_name="nlu_model_version")
    op.drop_table("nlu_model_version")
    with op.batch_alter_table("call_attempt", schema=None) as batch_op:
        batch_op.drop_column("nlu_version")
    with op.batch_alter_table("turn", schema=None) as batch_op:
        batch_op.drop_column("reading")
