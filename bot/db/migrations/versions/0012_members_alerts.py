"""members' alerts: urgent readings the model is unsure of, and the consoles' journal

A request read as urgent with low confidence goes to its grid's members first as 可能紧急
(`tickets.possibly_urgent`) instead of paging the secretary and the branch. Console events are
numbered and kept a few minutes (`console_events`), so a console that reconnects, to any
worker, is sent what it missed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(
            sa.Column('possibly_urgent', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        'console_events',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('audience', sa.JSON(), nullable=False),
        sa.Column('event', sa.JSON(), nullable=False),
    )
    op.create_index('ix_console_events_created_at', 'console_events', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_console_events_created_at', 'console_events')
    op.drop_table('console_events')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('possibly_urgent')
