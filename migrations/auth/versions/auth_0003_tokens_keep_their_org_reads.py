"""tokens made from the presets keep reading orgs (orgs:read) and, from full, the audit log

Org-wide reads got scopes of their own (orgs:read, audit:read). Tokens store their presets
expanded, so a token made as `full` or `read-only` before them would silently lose what its
preset gives today; tokens made with chosen scopes get nothing new.

Revision ID: auth_0003
Revises: auth_0002
"""

from alembic import op
import sqlalchemy as sa

revision = 'auth_0003'
down_revision = 'auth_0002'
branch_labels = None
depends_on = None

OLD_FULL = {"experiments:read", "experiments:write", "executions:read", "executions:write",
            "runs:execute"}
OLD_READ_ONLY = {"experiments:read", "executions:read"}

tokens = sa.table("api_tokens", sa.column("id", sa.String), sa.column("scopes", sa.JSON))


def upgrade() -> None:
    connection = op.get_bind()
    for token_id, scopes in connection.execute(sa.select(tokens.c.id, tokens.c.scopes)).all():
        held = set(scopes or ())
        if held == OLD_FULL:
            added = ["orgs:read", "audit:read"]
        elif held == OLD_READ_ONLY:
            added = ["orgs:read"]
        else:
            continue
        connection.execute(tokens.update().where(tokens.c.id == token_id)
                           .values(scopes=list(scopes) + added))


def downgrade() -> None:
    pass  # the scopes added are harmless to the code before them
