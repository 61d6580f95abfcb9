"""trust: room invites, expiring tokens, removed members, the audit log, service secrets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grids') as batch:
        batch.add_column(sa.Column('invite', sa.String(length=40), nullable=True))
    grids = sa.table('grids', sa.column('id', sa.Integer), sa.column('invite', sa.String))
    connection = op.get_bind()
    for (grid_id,) in connection.execute(sa.select(grids.c.id)).all():
        connection.execute(
            grids.update().where(grids.c.id == grid_id).values(invite=secrets.token_urlsafe(9))
        )
    with op.batch_alter_table('grids') as batch:
        batch.alter_column('invite', existing_type=sa.String(length=40), nullable=False)
        batch.create_unique_constraint('uq_grids_invite', ['invite'])

    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))

    # Tokens issued before they could expire are dropped: members log in once more.
    op.execute('DELETE FROM member_tokens')
    with op.batch_alter_table('member_tokens') as batch:
        batch.add_column(
            sa.Column('kind', sa.String(length=8), nullable=False, server_default='session')
        )
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False))

    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_name', sa.String(length=64), nullable=True),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=128), nullable=True),
        sa.Column('detail', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['actor_id'], ['members.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_table(
        'service_secrets',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('service_secrets')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    with op.batch_alter_table('member_tokens') as batch:
        batch.drop_column('expires_at')
        batch.drop_column('kind')
    with op.batch_alter_table('members') as batch:
        batch.drop_column('active')
    with op.batch_alter_table('grids') as batch:
        batch.drop_constraint('uq_grids_invite', type_='unique')
        batch.drop_column('invite')
