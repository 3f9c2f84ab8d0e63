"""notice codes, public preview message, operator gender

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("operators", sa.Column("gender", sa.String(length=8), nullable=True))
    op.add_column("tickets", sa.Column("last_public_message_id", sa.BigInteger(), nullable=True))
    op.add_column("support_messages", sa.Column("notice", sa.Text(), nullable=True))
    # The preview of existing tickets: their last customer / operator / bot message.
    op.execute(
        "UPDATE tickets SET last_public_message_id = (SELECT max(m.id) FROM support_messages m"
        " WHERE m.ticket_id = tickets.id AND m.sender_type IN ('customer', 'admin', 'bot')"
        " AND m.kind <> 'note')"
    )


def downgrade() -> None:
    with op.batch_alter_table("support_messages") as b:
        b.drop_column("notice")
    with op.batch_alter_table("tickets") as b:
        b.drop_column("last_public_message_id")
    with op.batch_alter_table("operators") as b:
        b.drop_column("gender")
