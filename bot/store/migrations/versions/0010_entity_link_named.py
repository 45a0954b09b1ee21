"""entity link reads: a partial index on the links not of a holder's own data, which
every network read probes once per holder-name row ("is this name named elsewhere?",
``bot.store.links._linking``). Without it the probe walks every holder of a common name
(measured with bench/web_bench.py at 100,000 calls on PostgreSQL: the groups query
9.2 -> 3.2 s, an account's whole group 6.8 -> 1.8 s).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NOT_HOLDER = sa.text("origin <> 'holder'")


def upgrade() -> None:
    op.create_index(
        "ix_entity_link_named",
        "entity_link",
        ["kind", "link_key"],
        postgresql_where=NOT_HOLDER,
        sqlite_where=NOT_HOLDER,
    )


def downgrade() -> None:
    op.drop_index("ix_entity_link_named", table_name="entity_link")
