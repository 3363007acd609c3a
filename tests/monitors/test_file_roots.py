"""File sources stay inside the file roots: a path that leads outside them (by `..`, an
absolute path, a symlinked file or folder) is refused where it enters, saying which path and
which roots, and nothing of it reaches the store."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os

import pytest
from sqlalchemy import func, select

from monitors.catalog import delivered_files, sync_datasets
from monitors.cli import main
from monitors.config import ConfigError, load_config
from monitors.intake.file_roots import OutsideRoots
from monitors.pipeline.run import execute_run, land_pending
from monitors.settings import load_settings
from store.models import Batch, Dataset, Metric, Run

DAY = dt.date(2026, 1, 5)
ROWS = "id,amount\n1,2.5\n2,3.0\n"
CONFIG = ("datasets:\n  - name: orders\n    format: csv\n    source: {source}\n"
          "    contract: {{columns: [{{name: id, type: integer}}, {{name: amount, type: float}}]}}\n")


@pytest.fixture
def outside(tmp_path):
    """A folder beside MONITORS_HOME (tmp_path/home), with a valid day's file in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / f"orders_{DAY}.csv").write_text(ROWS)
    return folder


@pytest.fixture
def landing(settings):
    folder = settings.home / "landing" / "orders"
    folder.mkdir(parents=True)
    return folder


def write_config(settings, source: str) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(CONFIG.format(source=source))


def stored(sessions) -> dict[str, int]:
    with sessions() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Dataset, Batch, Metric)}


def ingest(*args: str) -> int:
    return main(["ingest", "--dataset", "orders", *args])


def assert_refused(capsys, path, settings) -> None:
    err = capsys.readouterr().err
    assert "outside the file roots" in err and str(path) in err, err
    assert all(str(root) in err for root in settings.file_roots), err


def test_a_dotdot_escape_in_the_config_is_a_config_error_with_its_line(settings, sessions, landing,
                                                                      outside, capsys):
    write_config(settings, "landing/../../outside")
    with pytest.raises(ConfigError, match=r"monitors\.yaml:4: datasets\.0\.source: .*"
                                          r"\(it leads to .*/outside\) is outside the file roots"):
        load_config(settings.config_path, settings)

    (landing / f"orders_{DAY}.csv").write_text(ROWS)
    assert ingest(str(landing / f"orders_{DAY}.csv")) == 2
    assert "monitors.yaml:4: datasets.0.source" in capsys.readouterr().err
    assert stored(sessions) == {"datasets": 0, "batches": 0, "metrics": 0}


def test_a_dotdot_escape_given_to_ingest_is_refused(settings, sessions, landing, outside, capsys):
    escaping = landing / ".." / ".." / ".." / "outside" / f"orders_{DAY}.csv"
    assert ingest("--create", str(escaping)) == 2
    assert_refused(capsys, escaping, settings)
    assert stored(sessions) == {"datasets": 0, "batches": 0, "metrics": 0}


def test_an_absolute_path_outside_is_refused(settings, sessions, outside, capsys):
    write_config(settings, str(outside))
    with pytest.raises(ConfigError, match=r"monitors\.yaml:4: datasets\.0\.source: .*outside the file roots"):
        load_config(settings.config_path, settings)

    settings.config_path.unlink()
    path = outside / f"orders_{DAY}.csv"
    assert ingest("--create", str(path)) == 2
    assert_refused(capsys, path, settings)
    assert stored(sessions) == {"datasets": 0, "batches": 0, "metrics": 0}


def test_a_symlinked_file_pointing_outside_is_refused_and_skipped_when_read(
        settings, sessions, landing, outside, capsys, caplog):
    link = landing / f"orders_{DAY}.csv"
    link.symlink_to(outside / f"orders_{DAY}.csv")
    write_config(settings, "landing/orders")
    assert ingest("--create", str(link)) == 2
    assert_refused(capsys, link, settings)

    # a run reads the landing folder: the link is skipped with a warning, the real file read
    (landing / f"orders_{DAY}.jsonl").write_text('{"id": 1, "amount": 2.5}\n')
    with sessions.begin() as session:
        dataset = sync_datasets(session, load_config(settings.config_path, settings), settings.home)[0]
    with caplog.at_level(logging.WARNING, logger="monitors.catalog"):
        files = delivered_files(settings, dataset, DAY)
    assert files == [(landing / f"orders_{DAY}.jsonl").resolve()]
    assert f"{link} (it leads to {outside / f'orders_{DAY}.csv'}) is outside the file roots" in caplog.text
    assert stored(sessions) == {"datasets": 1, "batches": 0, "metrics": 0}


def test_a_symlinked_folder_pointing_outside_is_refused(settings, sessions, outside, capsys):
    (settings.home / "landing").mkdir(parents=True)
    linked = settings.home / "landing" / "orders"
    linked.symlink_to(outside, target_is_directory=True)
    write_config(settings, "landing/orders")
    with pytest.raises(ConfigError, match=r"monitors\.yaml:4: datasets\.0\.source: .*outside the file roots"):
        load_config(settings.config_path, settings)

    settings.config_path.unlink()
    path = linked / f"orders_{DAY}.csv"
    assert ingest("--create", str(path)) == 2
    assert_refused(capsys, path, settings)

    # a dataset row that points there anyway (made before the roots existed) is not read
    with sessions.begin() as session:
        session.add(Dataset(name="orders", format="csv", source=str(linked), contract={"columns": []}))
    with sessions() as session, pytest.raises(OutsideRoots, match="outside the file roots"):
        delivered_files(settings, session.scalar(select(Dataset)), DAY)
    assert stored(sessions) == {"datasets": 1, "batches": 0, "metrics": 0}


def test_a_path_inside_the_roots_lands(settings, sessions, landing, capsys):
    (landing / f"orders_{DAY}.csv").write_text(ROWS)
    write_config(settings, "landing/orders")
    assert load_config(settings.config_path, settings).datasets[0].source == "landing/orders"
    # `..` that stays inside is fine: the resolved path is what counts
    assert ingest("--create", str(landing / ".." / "orders" / f"orders_{DAY}.csv")) == 0
    counts = stored(sessions)
    assert counts["batches"] == 1 and counts["metrics"] > 0


def test_more_roots_are_listed_in_the_environment(settings, sessions, outside, monkeypatch):
    monkeypatch.setenv("MONITORS_FILE_ROOTS", os.pathsep.join([str(settings.home), str(outside)]))
    widened = load_settings()
    assert widened.file_roots == (settings.home, outside.resolve())
    write_config(settings, str(outside))
    assert load_config(settings.config_path, widened).datasets[0].source == str(outside)
    assert ingest(str(outside / f"orders_{DAY}.csv")) == 0
    assert stored(sessions)["batches"] == 1
    # the default is MONITORS_HOME alone
    assert dataclasses.replace(widened, file_roots=(settings.home,)) == settings


def test_a_run_reads_only_the_files_inside_the_roots(settings, sessions, landing, outside, caplog):
    write_config(settings, "landing/orders")
    (landing / f"orders_{DAY}.csv").symlink_to(outside / f"orders_{DAY}.csv")
    with sessions.begin() as session:
        dataset = sync_datasets(session, load_config(settings.config_path, settings), settings.home)[0]
        with caplog.at_level(logging.WARNING, logger="monitors.catalog"):
            assert land_pending(session, settings, dataset, DAY) == []
    assert "is outside the file roots" in caplog.text
    assert stored(sessions) == {"datasets": 1, "batches": 0, "metrics": 0}


def test_a_run_under_a_config_naming_a_folder_outside_fails_with_the_line(settings, sessions, outside):
    write_config(settings, "landing/orders")
    with sessions.begin() as session:
        dataset = sync_datasets(session, load_config(settings.config_path, settings), settings.home)[0]
        run = Run(dataset_id=dataset.id, trigger="manual", partition_from=DAY, partition_to=DAY,
                  requested_by="test")
        session.add(run)
    write_config(settings, str(outside))
    execute_run(sessions, settings, run.id, notify=False)
    with sessions() as session:
        failed = session.get(Run, run.id)
    assert failed.status == "failed" and "monitors.yaml:4: datasets.0.source" in failed.error
    assert stored(sessions) == {"datasets": 1, "batches": 0, "metrics": 0}
