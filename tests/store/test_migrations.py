"""The store brings itself up to date, and the migrations describe the models exactly."""
import alembic.command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from store.engine import MIGRATIONS, at_head, open_store, script_heads
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


def test_the_scripts_head_is_read_as_alembic_reads_it():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert script_heads() == frozenset(ScriptDirectory.from_config(config).get_heads())


def test_a_store_at_head_opens_without_alembic_and_one_behind_is_upgraded(settings, monkeypatch):
    engine, _ = open_store(settings.db_url)
    upgrades = []
    monkeypatch.setattr(alembic.command, "upgrade", lambda config, revision: upgrades.append(revision))

    engine, _ = open_store(settings.db_url)  # at head: nothing to apply, alembic not asked
    assert upgrades == [] and at_head(engine)

    with engine.begin() as connection:  # as if a migration had been added since
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    engine, _ = open_store(settings.db_url)
    assert upgrades == ["head"]
    engine.dispose()
