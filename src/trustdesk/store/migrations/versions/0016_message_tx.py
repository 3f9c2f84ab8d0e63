"""message_tx: each message's writing transaction, the operators' stream's commit order

Revision ID: 0016
Revises: 0014

`support_messages.tx`: on PostgreSQL the id of the transaction that wrote the message
(pg_current_xact_id), 0 on SQLite (one writer at a time: ids are in commit order there).
The operators' stream reads in (tx, id) order below the visibility horizon instead of
taking one lock for every message (docs/protocol.md, "Commit order without a lock").
Rows written before this migration keep 0: they were committed in id order under the
old lock, before any transaction that writes a non-zero tx.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("support_messages") as batch:
        batch.add_column(sa.Column("tx", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index("ix_messages_tx_id", "support_messages", ["tx", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_tx_id", table_name="support_messages")
    with op.batch_alter_table("support_messages") as batch:
        batch.drop_column("tx")
