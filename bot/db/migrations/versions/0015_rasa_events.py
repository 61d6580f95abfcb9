"""Rasa's events table, made by the migrations instead of by each worker at start

The tracker store (`bot.conversation.tracker_store`) keeps Rasa's `events` table as Rasa's
SQLTrackerStore makes it, on the service's database. Rasa's store made it when a worker
started; two workers starting together both tried. Made here, once, before any worker runs;
a database Rasa already wrote keeps its table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if 'events' in sa.inspect(op.get_bind()).get_table_names():
        return
    # As rasa.core.tracker_store.SQLTrackerStore.SQLEvent (Rasa 3.6) declares it.
    op.create_table(
        'events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sender_id', sa.String(length=255), nullable=False),
        sa.Column('type_name', sa.String(length=255), nullable=False),
        sa.Column('timestamp', sa.Float(), nullable=True),
        sa.Column('intent_name', sa.String(length=255), nullable=True),
        sa.Column('action_name', sa.String(length=255), nullable=True),
        sa.Column('data', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_events_sender_id', 'events', ['sender_id'])


def downgrade() -> None:
    # Rasa's table, which the service did not always make: left as it is.
    pass
