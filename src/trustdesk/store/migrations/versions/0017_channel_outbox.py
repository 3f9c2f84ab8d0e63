"""channel outbox (replies to email / Telegram sent durably); visitors by email, any case

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "channel_outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("noted", sa.Boolean(), nullable=False),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", name="uq_channel_outbox_message"),
    )
    op.create_index("ix_channel_outbox_due", "channel_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_channel_outbox_ticket", "channel_outbox", ["ticket_id", "id"])
    op.create_index("ix_visitors_email_lower", "visitors", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_visitors_email_lower", table_name="visitors")
    op.drop_index("ix_channel_outbox_ticket", table_name="channel_outbox")
    op.drop_index("ix_channel_outbox_due", table_name="channel_outbox")
    op.drop_table("channel_outbox")
