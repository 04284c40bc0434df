"""verified email addresses, the links sent by mail, and auth's mail outbox

An account's address counts once verified (`email_verified_at`); until now only addresses a
provider vouched for (email_verified) were kept, so those are verified from the start. Links
to verify an address or reset a password keep only their hash (`email_tokens`); messages wait
in `auth_mail_outbox` until the SMTP server takes them.

Revision ID: auth_0007
Revises: auth_0006
"""

from alembic import op
import sqlalchemy as sa

revision = 'auth_0007'
down_revision = 'auth_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('email_key', sa.String(length=320), nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_email_key'), ['email_key'], unique=False)
    op.execute("UPDATE accounts SET email_verified_at = created_at, email_key = lower(email) "
               "WHERE email IS NOT NULL")
    op.create_table('email_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_email_tokens_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_email_tokens'))
    )
    with op.batch_alter_table('email_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_tokens_account_id'), ['account_id'], unique=False)
    op.create_table('auth_mail_outbox',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_mail_outbox'))
    )
    with op.batch_alter_table('auth_mail_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_mail_outbox_due_at'), ['due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('auth_mail_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_mail_outbox_due_at'))
    op.drop_table('auth_mail_outbox')
    with op.batch_alter_table('email_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_tokens_account_id'))
    op.drop_table('email_tokens')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_email_key'))
        batch_op.drop_column('email_key')
        batch_op.drop_column('email_verified_at')
