"""arena battles: one question, two models, the user's vote

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from aift.store.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arena_battles",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model_a", sa.String(200), nullable=False),
        sa.Column("model_b", sa.String(200), nullable=False),
        sa.Column("answer_a", sa.Text(), nullable=True),
        sa.Column("answer_b", sa.Text(), nullable=True),
        sa.Column("winner", sa.String(16), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("voted_at", UTCDateTime(), nullable=True),
        sa.Column("owner_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_arena_battles_owner_id", "arena_battles", ["owner_id"])
    op.create_index("ix_arena_battles_winner", "arena_battles", ["winner"])
    op.create_index("ix_arena_battles_created_at", "arena_battles", ["created_at"])


def downgrade() -> None:
    op.drop_table("arena_battles")
