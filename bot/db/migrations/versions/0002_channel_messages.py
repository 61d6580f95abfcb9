"""channel messages: kind, media, reply handle, delivery; residents' location; notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='text'))
        batch.add_column(sa.Column('media', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('reply_handle', sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column('delivery', sa.String(length=16), nullable=True))
        batch.create_index('ix_messages_delivery', ['delivery'])
    with op.batch_alter_table('residents') as batch:
        batch.add_column(sa.Column('location', sa.String(length=255), nullable=True))
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('route', sa.String(length=32), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_notifications_pending', 'notifications', ['route', 'sent_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notifications_pending', table_name='notifications')
    op.drop_table('notifications')
    with op.batch_alter_table('residents') as batch:
        batch.drop_column('location')
    with op.batch_alter_table('messages') as batch:
        batch.drop_index('ix_messages_delivery')
        batch.drop_column('delivery')
        batch.drop_column('reply_handle')
        batch.drop_column('media')
        batch.drop_column('kind')
