"""members' alerts: urgent readings the model is unsure of

A request read as urgent with low confidence goes to its grid's members first as 可能紧急
(`tickets.possibly_urgent`) instead of paging the secretary and the branch.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(
            sa.Column('possibly_urgent', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('possibly_urgent')
