"""lineage (datasets.upstream), incidents (alerts.caused_by, alerts.incident_split) and the
gates' audit trail (gate_changes)

Revision ID: 0004
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upstream', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caused_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('incident_split', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_foreign_key('fk_alerts_caused_by', 'alerts', ['caused_by'], ['id'],
                                    ondelete='SET NULL')
    op.create_table('gate_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('partition', sa.Date(), nullable=False),
    sa.Column('verdict', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('why', sa.Text(), nullable=False),
    sa.Column('alert_ids', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('gate_changes', schema=None) as batch_op:
        batch_op.create_index('ix_gate_changes_partition', ['dataset_id', 'partition'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('gate_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_gate_changes_partition')
    op.drop_table('gate_changes')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_alerts_caused_by', type_='foreignkey')
        batch_op.drop_column('incident_split')
        batch_op.drop_column('caused_by')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_column('upstream')
