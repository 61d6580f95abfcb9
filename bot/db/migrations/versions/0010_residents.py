"""residents: a member may choose to give residents their phone number

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.add_column(
            sa.Column('share_phone', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.drop_column('share_phone')
