"""tickets: an index on grid and creation time

A new report looks for an open, recent report of the same thing in its grid
(`bot.handoff.incidents.find_incident`). Without this index the database read every ticket
the grid ever had: on SQLite 8.2 ms a new ticket with 20,000 old ones in the grid, 1.0 ms
with it (0.8 ms with 100).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_tickets_grid_created', 'tickets', ['grid_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_tickets_grid_created', 'tickets')
