"""known customers, ratings and close times

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visitors") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=128), nullable=True))
        batch.create_index("ix_visitors_external_id", ["external_id"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("closed_at", trustdesk.store.models.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rating_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rated_at", trustdesk.store.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for col in ("rated_at", "rating_comment", "rating", "closed_at"):
            batch.drop_column(col)
    with op.batch_alter_table("visitors") as batch:
        batch.drop_index("ix_visitors_external_id")
        batch.drop_column("external_id")
