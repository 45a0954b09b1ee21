"""dashboard indexes: what the call list, monitor, feedback, review queue and audit log
query by (measured with bench/web_bench.py at 100,000 calls on PostgreSQL)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: (index, table, columns): kept in step with ``__table_args__`` in bot/store/models.py.
INDEXES = [
    # call list order (newest first, keyset by id) and the monitor's "last N calls"
    ("ix_call_attempt_started_id", "call_attempt", ["started_at", "id"]),
    # monitor: work items per campaign and state
    ("ix_campaign_account_campaign_state", "campaign_account", ["campaign_id", "state"]),
    # feedback: verdicts of the last N days
    ("ix_verdict_created_at", "verdict", ["created_at"]),
    # feedback and training export: turns by (call, index)
    ("ix_turn_call_idx", "turn", ["call_id", "idx"]),
    # review queue: open items oldest first; "your items"
    ("ix_review_item_state_created", "review_item", ["state", "created_at", "id"]),
    ("ix_review_item_claimed_by", "review_item", ["claimed_by"]),
    # audit log filtered by actor, newest first
    ("ix_audit_event_actor_at", "audit_event", ["actor", "at"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
