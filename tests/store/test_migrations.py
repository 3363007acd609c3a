"""The store brings itself up to date, and the migrations describe the models exactly."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.engine import open_store
from store.models import Base


def test_the_migrations_match_the_models(settings):
    engine, _ = open_store(settings.db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_opening_twice_is_a_no_op(settings):
    engine, _ = open_store(settings.db_url)
    tables = set(inspect(engine).get_table_names())
    engine, _ = open_store(settings.db_url)
    assert set(inspect(engine).get_table_names()) == tables >= {"datasets", "batches", "metrics",
                                                                "runs", "alerts", "mute_rules",
                                                                "alert_events", "monitors"}
