"""settings stored in the database, sites that opened the widget unallowed

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "blocked_origins",
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("first_seen", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("origin"),
    )
    op.create_index("ix_blocked_origins_last_seen", "blocked_origins", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_blocked_origins_last_seen", table_name="blocked_origins")
    op.drop_table("blocked_origins")
    op.drop_table("app_settings")
