"""accounts: users, groups, API tokens, one-time links, the audit trail, shares, and an
owner on every owned resource (NULL: made before accounts; the first admin adopts them)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from aift.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OWNED = ("jobs", "models", "datasets", "knowledge_bases", "search_history", "conversations")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(32), sa.ForeignKey("groups.id", ondelete="CASCADE")),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.PrimaryKeyConstraint("group_id", "user_id"),
    )
    op.create_index("ix_group_members_user_id", "group_members", ["user_id"])
    _tokens_and_links()
    _audit_and_shares()
    for table in OWNED:
        op.add_column(table, sa.Column("owner_id", sa.String(32), nullable=True))
        op.create_index(f"ix_{table}_owner_id", table, ["owner_id"])
    op.add_column("browser_sessions", sa.Column("user_id", sa.String(32), nullable=True))
    op.create_index("ix_browser_sessions_user_id", "browser_sessions", ["user_id"])


def _tokens_and_links() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "account_links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_account_links_user_id", "account_links", ["user_id"])


def _audit_and_shares() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("target", sa.String(1000), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
    )
    for column in ("at", "actor_id", "action"):
        op.create_index(f"ix_audit_events_{column}", "audit_events", [column])
    op.create_table(
        "shares",
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(200), nullable=False),
        sa.Column("grantee_type", sa.String(8), nullable=False),
        sa.Column("grantee_id", sa.String(32), nullable=False),
        sa.Column("access", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "resource_id", "grantee_type", "grantee_id"),
    )
    op.create_index("ix_shares_grantee_id", "shares", ["grantee_id"])


def downgrade() -> None:
    op.drop_index("ix_browser_sessions_user_id", "browser_sessions")
    op.drop_column("browser_sessions", "user_id")
    for table in OWNED:
        op.drop_index(f"ix_{table}_owner_id", table)
        op.drop_column(table, "owner_id")
    for table in ("shares", "audit_events", "account_links", "api_tokens", "group_members"):
        op.drop_table(table)
    op.drop_table("groups")
    op.drop_table("users")
