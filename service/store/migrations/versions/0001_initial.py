"""The first schema: JWT token uses, the card log (hook calls and cards) and card feedback.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.models import BIG_ID, UtcDateTime

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "token_use",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_token_use"),
    )
    op.create_index("ix_token_use_expires_at", "token_use", ["expires_at"])

    op.create_table(
        "hook_call",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(16), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("client_iss", sa.String(255), nullable=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("ruleset_version", sa.String(32), nullable=False),
        sa.Column("recommendation", sa.String(32), nullable=False),
        sa.Column("card_count", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("data_source", sa.String(16), nullable=False),
        sa.Column("prefetch_keys", sa.String(255), nullable=False),
        sa.Column("fetched_keys", sa.String(255), nullable=False),
        sa.Column("incomplete_sources", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hook_call"),
    )
    op.create_index("ix_hook_call_at", "hook_call", ["at"])
    op.create_index("ix_hook_call_day", "hook_call", ["day"])

    op.create_table(
        "card_shown",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("call_id", BIG_ID, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["hook_call.id"],
            name="fk_card_shown_call_id_hook_call",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("uuid", name="pk_card_shown"),
    )
    op.create_index("ix_card_shown_call_id", "card_shown", ["call_id"])
    op.create_index("ix_card_shown_at", "card_shown", ["at"])

    op.create_table(
        "card_feedback",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("client_iss", sa.String(255), nullable=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("accepted_suggestions", sa.Text(), nullable=False),
        sa.Column("override_system", sa.String(255), nullable=True),
        sa.Column("override_code", sa.String(128), nullable=True),
        sa.Column("has_comment", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("outcome_timestamp", sa.String(64), nullable=False),
        sa.Column("outcome_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_card_feedback"),
        sa.UniqueConstraint("key", name="uq_card_feedback_key"),
    )
    op.create_index("ix_card_feedback_received_at", "card_feedback", ["received_at"])
    op.create_index("ix_card_feedback_card_uuid", "card_feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_table("card_feedback")
    op.drop_table("card_shown")
    op.drop_table("hook_call")
    op.drop_table("token_use")
