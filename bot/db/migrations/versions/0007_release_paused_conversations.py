"""release paused conversations: the open ticket holds a conversation, not Rasa's pause

Before this version a handoff paused the resident's Rasa conversation and a resolve resumed
it. Now the ticket alone says who holds a conversation (docs/architecture.md) and nothing
resumes trackers, so a conversation paused before the upgrade is resumed here, as a resolve
used to do it: a resume, then an action_listen so the rules do not see action_handoff last.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
import json
import time

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Rasa's `events` table (SQLTrackerStore), on the service's database when Rasa has written one.
events = sa.table(
    'events',
    sa.column('id', sa.Integer),
    sa.column('sender_id', sa.String),
    sa.column('type_name', sa.String),
    sa.column('timestamp', sa.Float),
    sa.column('intent_name', sa.String),
    sa.column('action_name', sa.String),
    sa.column('data', sa.Text),
)


def upgrade() -> None:
    connection = op.get_bind()
    if 'events' not in sa.inspect(connection).get_table_names():
        return
    rows = connection.execute(
        sa.select(events.c.sender_id, events.c.type_name)
        .where(events.c.type_name.in_(['pause', 'resume']))
        .order_by(events.c.id)
    ).all()
    last = {sender: kind for sender, kind in rows}
    now = time.time()
    resume = {'event': 'resume', 'timestamp': now}
    listen = {
        'event': 'action', 'timestamp': now, 'name': 'action_listen', 'policy': None,
        'confidence': None, 'action_text': None, 'hide_rule_turn': False,
    }
    for sender in sorted(s for s, kind in last.items() if kind == 'pause'):
        connection.execute(events.insert(), [
            {'sender_id': sender, 'type_name': 'resume', 'timestamp': now,
             'action_name': None, 'data': json.dumps(resume)},
            {'sender_id': sender, 'type_name': 'action', 'timestamp': now,
             'action_name': 'action_listen', 'data': json.dumps(listen)},
        ])


def downgrade() -> None:
    """Nothing to undo: a resumed conversation is what the old version ends with too."""
