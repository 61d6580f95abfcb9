"""residents: a member may choose to give residents their phone number; photos and voice
clips residents send through the webchat

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.add_column(
            sa.Column('share_phone', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        'media_files',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('token', sa.String(32), nullable=False, unique=True),
        sa.Column('content_type', sa.String(32), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column(
            'message_id', sa.Integer(), sa.ForeignKey('messages.id', ondelete='CASCADE')
        ),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_media_files_message_id', 'media_files', ['message_id'])


def downgrade() -> None:
    op.drop_index('ix_media_files_message_id', 'media_files')
    op.drop_table('media_files')
    with op.batch_alter_table('members') as batch:
        batch.drop_column('share_phone')
