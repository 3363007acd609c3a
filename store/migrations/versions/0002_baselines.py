"""baselines (accepted new normals) and when a dataset began to be watched

Revision ID: 0002
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('baselines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('column', sa.String(length=300), nullable=True),
    sa.Column('metric', sa.String(length=50), nullable=False),
    sa.Column('from_partition', sa.Date(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('removed_by', sa.String(length=200), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('baselines', schema=None) as batch_op:
        batch_op.create_index('ix_baselines_dataset', ['dataset_id'], unique=False)
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('watched_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_column('watched_since')
    with op.batch_alter_table('baselines', schema=None) as batch_op:
        batch_op.drop_index('ix_baselines_dataset')
    op.drop_table('baselines')
