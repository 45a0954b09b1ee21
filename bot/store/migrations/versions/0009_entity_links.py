"""entity links: the accounts' network (phones, cards, IDs, people and employers that tie
accounts together; numbers by keyed hash only). Filled by new calls; ``bot db
link-entities`` links what was stored before.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entity_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("link_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("shown", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_pk"], ["account.id"]),
        sa.ForeignKeyConstraint(["call_id"], ["call_attempt.id"]),
        sa.ForeignKeyConstraint(["entity_id"], ["extracted_entity.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_entity_link_account_pk", "entity_link", ["account_pk"])
    op.create_index("ix_entity_link_call_id", "entity_link", ["call_id"])
    op.create_index("ix_entity_link_key", "entity_link", ["kind", "link_key", "account_pk"])


def downgrade() -> None:
    op.drop_index("ix_entity_link_key", table_name="entity_link")
    op.drop_index("ix_entity_link_call_id", table_name="entity_link")
    op.drop_index("ix_entity_link_account_pk", table_name="entity_link")
    op.drop_table("entity_link")
