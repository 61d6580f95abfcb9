"""routing claims: which worker routes an inbound message, until when, and how often it tried

Several workers share one database; a worker claims a message before routing it
(`bot.conversation.work`), and a claim that outlives its worker expires.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('routing_by', sa.String(64)))
        batch.add_column(sa.Column('routing_until', sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column('routing_attempts', sa.Integer(), nullable=False, server_default='0')
        )
    # Routing looks for unrouted inbound messages many times a second; they are few.
    op.create_index(
        'ix_messages_unrouted',
        'messages',
        ['id'],
        postgresql_where=sa.text("direction = 'in' AND handled_at IS NULL"),
        sqlite_where=sa.text("direction = 'in' AND handled_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index('ix_messages_unrouted', 'messages')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('routing_attempts')
        batch.drop_column('routing_until')
        batch.drop_column('routing_by')
