"""help center: articles, their search terms, what the widget showed

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trustdesk.store.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kb_articles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("locale", sa.String(length=2), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=60), server_default="", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column(
            "author_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("operators.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("author_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("locale", "slug", name="uq_kb_articles_locale_slug"),
    )
    op.create_index("ix_kb_articles_published", "kb_articles", ["published", "locale"])
    op.create_table(
        "kb_terms",
        sa.Column("term", sa.String(length=64), primary_key=True),
        sa.Column(
            "article_id",
            BigId,
            sa.ForeignKey("kb_articles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("weight", sa.Integer(), nullable=False),
    )
    op.create_index("ix_kb_terms_article", "kb_terms", ["article_id"])
    op.create_table(
        "kb_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", trustdesk.store.models.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "article_id",
            BigId,
            sa.ForeignKey("kb_articles.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "visitor_id",
            sa.String(length=32),
            sa.ForeignKey("visitors.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "ticket_id",
            sa.String(length=32),
            sa.ForeignKey("tickets.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("query", sa.String(length=200), nullable=False),
    )
    op.create_index("ix_kb_events_kind_at", "kb_events", ["kind", "at"])
    op.create_index("ix_kb_events_article", "kb_events", ["article_id"])
    op.create_index("ix_kb_events_visitor", "kb_events", ["visitor_id"])
    op.create_index("ix_kb_events_ticket", "kb_events", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("kb_events")
    op.drop_table("kb_terms")
    op.drop_table("kb_articles")
