"""config versions kept; runs record their findings; alerts say what they were judged on

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('config_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('introduced_by', sa.String(length=200), nullable=False),
    sa.Column('file_mtime_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('introduced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hash'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('findings', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('judged_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('judged_on', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('judged_on')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('judged_at')
        batch.drop_column('findings')
    op.drop_table('config_versions')
