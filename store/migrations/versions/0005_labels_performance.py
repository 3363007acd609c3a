"""labels: a model output's labels declaration on its dataset row

Revision ID: 0005
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('datasets', sa.Column('labels', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('datasets', 'labels')
