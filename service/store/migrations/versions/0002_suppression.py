"""Feedback-based suppression of the referral card: the referral cards shown (keyed hash of the
patient, until feedback on them can no longer come), the suppressions in force, and why a hook
call withheld a card.

Revision ID: 0002_suppression
Revises: 0001_initial
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.models import UtcDateTime

revision: str = "0002_suppression"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("hook_call", sa.Column("suppressed", sa.String(128), nullable=True))
    op.create_table(
        "referral_card",
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(255), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("card_uuid", name="pk_referral_card"),
    )
    op.create_index("ix_referral_card_expires_at", "referral_card", ["expires_at"])
    op.create_table(
        "suppression",
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(255), nullable=False),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("until", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_key", name="pk_suppression"),
    )
    op.create_index("ix_suppression_until", "suppression", ["until"])


def downgrade() -> None:
    op.drop_table("suppression")
    op.drop_table("referral_card")
    op.drop_column("hook_call", "suppressed")
