"""operator accounts: password reset links, TOTP second factor, recovery codes

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (nullable: no table rebuild on SQLite).
    op.add_column("operators", sa.Column("totp_secret", sa.String(length=255), nullable=True))
    op.add_column(
        "operators",
        sa.Column("totp_enabled_at", trustdesk.store.models.UTCDateTime(), nullable=True),
    )
    op.add_column("operators", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", trustdesk.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_password_resets_operator_id", "password_resets", ["operator_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", trustdesk.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recovery_codes_operator_id", "recovery_codes", ["operator_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_codes_operator_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_index("ix_password_resets_operator_id", table_name="password_resets")
    op.drop_table("password_resets")
    # Plain ALTER TABLE (SQLite 3.35+ and PostgreSQL): a batch rebuild of `operators` would
    # drop the table, and with foreign keys on SQLite would delete every session with it.
    op.execute("ALTER TABLE operators DROP COLUMN totp_last_step")
    op.execute("ALTER TABLE operators DROP COLUMN totp_enabled_at")
    op.execute("ALTER TABLE operators DROP COLUMN totp_secret")
