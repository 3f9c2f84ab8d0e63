"""channels: the ticket's channel, channel contacts, messages and consumer state

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), server_default="web", nullable=False)
        )
    op.create_table(
        "channel_contacts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("visitor_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["visitor_id"], ["visitors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "address", name="uq_channel_contacts_address"),
    )
    op.create_index("ix_channel_contacts_visitor", "channel_contacts", ["visitor_id"])
    op.create_table(
        "channel_messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id", name="uq_channel_messages_external"),
    )
    op.create_index("ix_channel_messages_ticket", "channel_messages", ["ticket_id"])
    op.create_table(
        "channel_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("lease_until", trustdesk.store.models.UTCDateTime(), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("updated_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("channel_state")
    op.drop_index("ix_channel_messages_ticket", table_name="channel_messages")
    op.drop_table("channel_messages")
    op.drop_index("ix_channel_contacts_visitor", table_name="channel_contacts")
    op.drop_table("channel_contacts")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("channel")
