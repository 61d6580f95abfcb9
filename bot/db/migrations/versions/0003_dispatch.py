"""dispatch: member schedules, pause and WeCom id; ticket timers, escalation, incidents, visits, ratings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('wecom_userid', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('schedule', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('paused', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE members SET paused = NOT on_duty")
    with op.batch_alter_table('members') as batch:
        batch.drop_column('on_duty')
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('claim_deadline', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('escalation_level', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('tried_member_ids', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('broadcast', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('incident_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('visit_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('visit_outcome', sa.Text(), nullable=True))
        batch.add_column(sa.Column('rating', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('survey_deadline', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_tickets_claim_deadline', ['claim_deadline'])
        batch.create_index('ix_tickets_incident_id', ['incident_id'])
        batch.create_index('ix_tickets_survey_deadline', ['survey_deadline'])
        batch.create_foreign_key('fk_tickets_incident_id', 'tickets', ['incident_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_constraint('fk_tickets_incident_id', type_='foreignkey')
        batch.drop_index('ix_tickets_survey_deadline')
        batch.drop_index('ix_tickets_incident_id')
        batch.drop_index('ix_tickets_claim_deadline')
        for column in ('closed_at', 'survey_deadline', 'rating', 'visit_outcome', 'visit_at',
                       'incident_id', 'broadcast', 'tried_member_ids', 'escalation_level',
                       'claim_deadline'):
            batch.drop_column(column)
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('on_duty', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute("UPDATE members SET on_duty = NOT paused")
    with op.batch_alter_table('members') as batch:
        batch.drop_column('paused')
        batch.drop_column('schedule')
        batch.drop_column('wecom_userid')
