"""knowledge base names are unique per owner, not across the server: a user's new
knowledge base never collides with (and so never reveals) one they cannot see

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# SQLite's unique constraint from 0004 has no name; this names it while the table is
# rebuilt, so it can be dropped. PostgreSQL names it <table>_<column>_key itself.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "knowledge_bases", recreate="always", naming_convention=NAMING
        ) as batch:
            batch.drop_constraint("uq_knowledge_bases_name", type_="unique")
            batch.create_unique_constraint("uq_knowledge_bases_owner_name", ["owner_id", "name"])
        return
    op.drop_constraint("knowledge_bases_name_key", "knowledge_bases", type_="unique")
    op.create_unique_constraint(
        "uq_knowledge_bases_owner_name", "knowledge_bases", ["owner_id", "name"]
    )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_bases") as batch:
        batch.drop_constraint("uq_knowledge_bases_owner_name", type_="unique")
        batch.create_unique_constraint("uq_knowledge_bases_name", ["name"])
