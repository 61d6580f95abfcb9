"""communities: the district's communities above the grids, one default for what exists

Every existing grid, member, ticket, possible request and audit entry goes into one default
community, so a single-community install sees and does exactly what it did before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

DEFAULT_NAME, DEFAULT_CODE = '默认社区', 'default'

# table -> whether every row must have a community (audit entries may be district-wide)
SCOPED = {
    'grids': True,
    'members': True,
    'tickets': True,
    'possible_requests': True,
    'audit_log': False,
}
# The tables whose members' lists filter on the column.
INDEXED = ('tickets', 'possible_requests')


def upgrade() -> None:
    communities = op.create_table(
        'communities',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
        sa.UniqueConstraint('name'),
    )
    connection = op.get_bind()
    connection.execute(
        communities.insert().values(
            name=DEFAULT_NAME, code=DEFAULT_CODE, created_at=datetime.now(UTC)
        )
    )
    default_id = connection.execute(sa.select(communities.c.id)).scalar_one()
    for table, required in SCOPED.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('community_id', sa.Integer(), nullable=True))
        op.execute(sa.table(table, sa.column('community_id')).update().values(
            community_id=default_id
        ))
        with op.batch_alter_table(table) as batch:
            if required:
                batch.alter_column('community_id', existing_type=sa.Integer(), nullable=False)
            batch.create_foreign_key(
                f'fk_{table}_community_id_communities', 'communities', ['community_id'], ['id']
            )
    for table in INDEXED:
        op.create_index(f'ix_{table}_community_id', table, ['community_id'])


def downgrade() -> None:
    for table in INDEXED:
        op.drop_index(f'ix_{table}_community_id', table_name=table)
    for table in SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'fk_{table}_community_id_communities', type_='foreignkey')
            batch.drop_column('community_id')
    op.drop_table('communities')
