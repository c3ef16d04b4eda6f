"""rows of datasets written from documents, kept for review before they train

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_drafts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id",
            sa.String(32),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("chunk_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("rejected_answer", sa.Text(), nullable=True),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("document", sa.String(300), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(500), nullable=True),
        sa.Column("passage", sa.Text(), nullable=False),
        sa.Column("edited", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_dataset_drafts_dataset_id", "dataset_drafts", ["dataset_id"])
    op.create_index("ix_dataset_drafts_status", "dataset_drafts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_dataset_drafts_status", "dataset_drafts")
    op.drop_index("ix_dataset_drafts_dataset_id", "dataset_drafts")
    op.drop_table("dataset_drafts")
