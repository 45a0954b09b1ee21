"""personal numbers at rest: the pii_secret table for sealed originals, and the stored
callee and reviewer text masked (turns, entities, explanations, verdicts, call errors)

The originals are sealed with the key configured when the migration runs
(``BOT_PII__KEY``, or ``pii_keys`` in the Alembic config's attributes); without one they
are dropped, only the masked text stays. Downgrading drops the sealed originals: the
masked text stays masked.

The key is read before anything changes, so a misconfigured one fails the migration with
the database untouched. SQLite commits DDL at once (pysqlite opens a transaction only for
DML): a data step that fails there leaves ``pii_secret`` behind at revision 0006, so the
table and its indexes are created only where missing and a second run completes.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from bot.store.pii_backfill import mask_stored
    from bot.store.pii_crypto import process_keyring

    attributes = context.config.attributes
    keys = attributes["pii_keys"] if "pii_keys" in attributes else process_keyring()
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("pii_secret"):
        _create_table()
    indexes = {i["name"] for i in sa.inspect(bind).get_indexes("pii_secret")}
    for name, column in (("ix_pii_secret_call_id", "call_id"), ("ix_pii_secret_key_id", "key_id")):
        if name not in indexes:
            op.create_index(name, "pii_secret", [column])
    mask_stored(bind, keys)


def _create_table() -> None:
    op.create_table(
        "pii_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("column_name", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["call_attempt.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("table_name", "row_id", "column_name", name="uq_pii_secret_cell"),
    )


def downgrade() -> None:
    op.drop_index("ix_pii_secret_key_id", table_name="pii_secret")
    op.drop_index("ix_pii_secret_call_id", table_name="pii_secret")
    op.drop_table("pii_secret")
