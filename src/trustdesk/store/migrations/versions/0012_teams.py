"""teams, routing rules, a ticket's team

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("name_key", sa.String(length=80), nullable=False),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name_key"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("last_assigned_at", trustdesk.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id", "operator_id"),
    )
    op.create_index("ix_team_members_operator", "team_members", ["operator_id"])
    op.create_table(
        "routing_rules",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pattern", sa.String(length=500), nullable=False),
        sa.Column("team_id", BigId, nullable=False),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_routing_rules_team_id", "routing_rules", ["team_id"])
    # (a plain column: a foreign key would rebuild the tickets table on SQLite)
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("team_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_tickets_team", "tickets", ["team_id"])
    op.create_index("ix_tickets_assignee", "tickets", ["assignee_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_tickets_assignee", table_name="tickets")
    op.drop_index("ix_tickets_team", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("team_id")
    op.drop_index("ix_routing_rules_team_id", table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_index("ix_team_members_operator", table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
