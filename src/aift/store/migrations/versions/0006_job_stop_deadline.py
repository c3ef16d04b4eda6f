"""how long a job says it needs to stop cleanly

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from aift.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("stop_deadline_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stop_deadline_at")
