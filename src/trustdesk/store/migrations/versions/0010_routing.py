"""ticket priority and snooze

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("priority", sa.String(length=8), server_default="normal", nullable=False)
        )
        batch.add_column(
            sa.Column("snoozed_until", trustdesk.store.models.UTCDateTime(), nullable=True)
        )
    op.create_index("ix_tickets_snoozed", "tickets", ["snoozed_until"])


def downgrade() -> None:
    op.drop_index("ix_tickets_snoozed", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("snoozed_until")
        batch.drop_column("priority")
