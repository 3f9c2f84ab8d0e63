"""escalation: tickets waiting for an answer, missed waits, ladder sends, operator opt-ins

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = trustdesk.store.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("waiting_since", When(), nullable=True))
        batch.add_column(sa.Column("waiting_message_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_tickets_waiting", "tickets", ["snoozed_until", "waiting_since"])
    # Open tickets whose last public message is the customer's are waiting already.
    op.execute(
        "UPDATE tickets SET waiting_message_id = last_public_message_id,"
        " waiting_since = (SELECT m.created_at FROM support_messages m"
        " WHERE m.id = tickets.last_public_message_id)"
        " WHERE status = 'open' AND EXISTS (SELECT 1 FROM support_messages m"
        " WHERE m.id = tickets.last_public_message_id AND m.sender_type = 'customer')"
    )
    op.create_table(
        "ticket_waits",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", When(), nullable=False),
        sa.Column("missed_at", When(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "message_id", name="uq_ticket_waits_message"),
    )
    op.create_index("ix_ticket_waits_started", "ticket_waits", ["started_at"])
    op.create_table(
        "escalation_sends",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("wait_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_until", When(), nullable=False),
        sa.Column("sent_at", When(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["wait_id"], ["ticket_waits.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("wait_id", "operator_id", "step", name="uq_escalation_sends_step"),
    )
    op.create_index("ix_escalation_sends_operator", "escalation_sends", ["operator_id"])
    op.create_table(
        "operator_alerts",
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("sound", sa.Boolean(), nullable=False),
        sa.Column("push", sa.Boolean(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("telegram", sa.Boolean(), nullable=False),
        sa.Column("telegram_chat_id", sa.String(length=32), nullable=True),
        sa.Column("link_code_hash", sa.String(length=64), nullable=True),
        sa.Column("link_code_expires_at", When(), nullable=True),
        sa.Column("updated_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("operator_id"),
        sa.UniqueConstraint("link_code_hash"),
    )


def downgrade() -> None:
    op.drop_table("operator_alerts")
    op.drop_index("ix_escalation_sends_operator", table_name="escalation_sends")
    op.drop_table("escalation_sends")
    op.drop_index("ix_ticket_waits_started", table_name="ticket_waits")
    op.drop_table("ticket_waits")
    op.drop_index("ix_tickets_waiting", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("waiting_message_id")
        batch.drop_column("waiting_since")
