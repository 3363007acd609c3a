"""gates: the least severe alert that closes a dataset's gates (the config's gate.holds_on)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing datasets keep the gate they had: critical alerts hold it
    op.add_column('datasets', sa.Column('gate_holds_on', sa.String(length=20), nullable=False,
                                        server_default='critical'))


def downgrade() -> None:
    op.drop_column('datasets', 'gate_holds_on')
