"""run steps: what a training run is doing now, step by step, for /ops/models

A run from the page exports the accepted corrections, trains and evaluates; each step's
status and times are kept so the page shows progress without reading the raw output.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ops_runs') as batch:
        batch.add_column(sa.Column('steps', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ops_runs') as batch:
        batch.drop_column('steps')
