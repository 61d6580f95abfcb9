"""the consoles' journal names the resident whose words an event carries

Erasing a resident (`bot.retention.erase`) reaches the events kept for reconnecting consoles
too, and expiry removes journal rows past the retention time however quiet the service was.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('console_events') as batch:
        batch.add_column(sa.Column('resident_id', sa.Integer(), nullable=True))
    op.create_index('ix_console_events_resident_id', 'console_events', ['resident_id'])


def downgrade() -> None:
    op.drop_index('ix_console_events_resident_id', 'console_events')
    with op.batch_alter_table('console_events') as batch:
        batch.drop_column('resident_id')
