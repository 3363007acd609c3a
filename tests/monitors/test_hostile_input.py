"""Small inputs built to exhaust or hang a worker are refused in seconds, naming the limit.

Each limit lives in the settings (monitors.settings.Limits, overridable by the
environment); tests that would need hundreds of megabytes at the defaults lower the limit
instead, which is what an operator's override does.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from detectors.checks import matches_pattern
from monitors.config import ConfigError, parse_config
from monitors.contract import ColumnSpec, Contract
from monitors.errors import Invalid
from monitors.intake.ingest import create_dataset, ingest_file
from monitors.intake.readers import ContractViolation
from monitors.settings import Limits, load_settings
from store.models import Batch, Dataset, Run

DAY = dt.date(2026, 3, 2)
CONTRACT = Contract(columns=[ColumnSpec(name="id", type="integer", nullable=False),
                             ColumnSpec(name="note", type="string")])
MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset(sessions, tmp_path):
    with sessions.begin() as session:
        found = Dataset(name="orders", format="csv", source=str(tmp_path),
                        contract=CONTRACT.to_json())
        session.add(found)
    return found


def land(sessions, dataset, path, limits=Limits()):
    started = time.perf_counter()
    with sessions.begin() as session:
        outcome = ingest_file(session, session.get(Dataset, dataset.id), path, DAY, limits=limits)
    return outcome, time.perf_counter() - started


def gzipped(path, chunks):
    with gzip.open(path, "wb", compresslevel=1) as handle:
        for chunk in chunks:
            handle.write(chunk)
    return path


# ---- the monitors YAML ----------------------------------------------------------------

def laughs(levels: int = 9) -> str:
    lines = ["datasets: []", "bomb:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_a_config_whose_aliases_expand_a_billion_times_is_refused_with_its_line():
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^monitors\.yaml:\d+: aliases expand this part to more "
                                          r"than 100,000 YAML nodes.*MONITORS_LIMIT_CONFIG_NODES"):
        parse_config(laughs(), "monitors.yaml")
    assert time.perf_counter() - started < 1


def test_the_alias_bound_comes_from_the_settings(tmp_path):
    settings = load_settings({"MONITORS_HOME": str(tmp_path), "MONITORS_LIMIT_CONFIG_NODES": "50"})
    # 123 nodes pass the default bound (and then fail as an unknown key), not 50
    with pytest.raises(ConfigError, match="bomb: Extra inputs"):
        parse_config(laughs(1), "m.yaml")
    with pytest.raises(ConfigError, match="more than 50 YAML nodes"):
        parse_config(laughs(1), "m.yaml", settings)


@pytest.mark.parametrize("text, line, key", [
    ("datasets: []\nversion: 1\ndatasets: []\n", 3, "datasets"),
    ("datasets: []\nx: {a: 1, a: 2}\n", 2, "a"),
])
def test_a_key_given_twice_is_refused_not_silently_dropped(text, line, key):
    with pytest.raises(ConfigError, match=rf"^m\.yaml:{line}: key '{key}' is given twice"):
        parse_config(text, "m.yaml")


def test_a_recursive_anchor_is_refused():
    with pytest.raises(ConfigError, match=r"^m\.yaml:2: an alias refers to a node that contains it"):
        parse_config("datasets: []\nx: &r [1, *r]\n", "m.yaml")


def test_limits_are_read_from_the_environment(tmp_path):
    settings = load_settings({"MONITORS_HOME": str(tmp_path), "MONITORS_LIMIT_COLUMNS": "12",
                              "MONITORS_LIMIT_LINE_BYTES": "4096"})
    assert (settings.limits.columns, settings.limits.line_bytes) == (12, 4096)
    assert load_settings({"MONITORS_HOME": str(tmp_path)}).limits == Limits()
    with pytest.raises(ValueError, match="MONITORS_LIMIT_COLUMNS='many': expected a whole number"):
        load_settings({"MONITORS_HOME": str(tmp_path), "MONITORS_LIMIT_COLUMNS": "many"})


# ---- readers ---------------------------------------------------------------------------

def test_a_gzipped_json_line_that_expands_past_the_line_limit_is_quarantined(sessions, dataset, tmp_path):
    # 64 MiB of one line from well under a megabyte of gzip; at the default 8 MiB limit
    path = gzipped(tmp_path / "orders.jsonl.gz",
                   [b'{"id": 1, "note": "'] + [b"x" * MiB] * 64 + [b'"}\n'])
    outcome, seconds = land(sessions, dataset, path)
    assert outcome.status == "quarantined"
    assert "a line longer than 8 MiB after data row 0 (limit MONITORS_LIMIT_LINE_BYTES)" in outcome.reason
    assert seconds < 10


def test_a_csv_row_past_the_line_limit_names_the_limit(sessions, dataset, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,note\n1,short\n2," + "y" * (2 * MiB) + "\n")
    outcome, _ = land(sessions, dataset, path, Limits(line_bytes=MiB))
    assert outcome.status == "quarantined"
    assert "orders.csv: a row longer than 1 MiB at line 3 (limit MONITORS_LIMIT_LINE_BYTES)" in outcome.reason
    assert "straddling" not in outcome.reason


def test_a_csv_row_over_the_default_8_mib_names_the_file_the_line_and_the_limit(sessions, dataset,
                                                                              tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,note\n1,short\n2,short\n3," + "y" * (9 * MiB) + "\n4,short\n")
    outcome, _ = land(sessions, dataset, path)
    assert outcome.status == "quarantined"
    assert outcome.reason.startswith(
        "orders.csv: a row longer than 8 MiB at line 4 (limit MONITORS_LIMIT_LINE_BYTES)")
    assert "straddling" not in outcome.reason and "block size" not in outcome.reason


def ordinary_rows(count: int) -> bytes:
    # ids that differ and a long note that repeats: about 150 times smaller gzipped, under
    # the ratio limit, as a dump of wide, repetitive records is
    note = b"lorem ipsum " * 120
    return b"".join(b"%d,%s\n" % (i * 7919 % 1_000_003, note) for i in range(count))


def test_a_gzip_under_the_ratio_limit_that_expands_too_far_is_stopped_while_streaming(
        sessions, dataset, tmp_path):
    content = b"id,note\n" + ordinary_rows(6000)  # 8.6 MiB
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(content, compresslevel=9))
    assert 20 < len(content) / path.stat().st_size < 200  # not a bomb by its ratio
    limits = Limits(compressed_content_bytes=4 * MiB, ratio_checked_after=MiB, line_bytes=MiB)
    outcome, _ = land(sessions, dataset, path, limits)
    assert outcome.status == "quarantined"
    assert "orders.csv.gz: decompresses to more than 4 MiB" in outcome.reason
    assert "limit MONITORS_LIMIT_COMPRESSED_CONTENT_BYTES" in outcome.reason
    # the same content as a plain file, whose size is there to see, lands
    plain = tmp_path / "orders.csv"
    plain.write_bytes(content)
    landed, _ = land(sessions, dataset, plain, limits)
    assert (landed.status, landed.rows) == ("ingested", 6000)


def test_the_compressed_content_limit_stops_a_stream_well_before_4_gib():
    assert Limits().compressed_content_bytes <= 1024 * MiB < Limits().decompressed_bytes


def test_a_gzip_bomb_of_ordinary_rows_is_stopped_by_its_compression_ratio(sessions, dataset, tmp_path):
    rows = b"".join(b"%d,same note again\n" % (i % 10) for i in range(100_000))
    path = gzipped(tmp_path / "orders.csv.gz", [b"id,note\n"] + [rows] * 20)
    outcome, _ = land(sessions, dataset, path, Limits(ratio_checked_after=MiB, compression_ratio=20))
    assert outcome.status == "quarantined"
    assert "decompresses to more than 20 times its size" in outcome.reason
    assert "MONITORS_LIMIT_COMPRESSION_RATIO" in outcome.reason


@pytest.mark.parametrize("suffix", ["csv", "csv.gz", "jsonl.gz"])
def test_content_past_the_decompressed_limit_is_quarantined(sessions, dataset, tmp_path, suffix):
    if suffix.startswith("csv"):
        chunks = [b"id,note\n"] + [b"".join(b"%d,n%d\n" % (i, i) for i in range(100_000))] * 3
    else:
        chunks = [b"".join(b'{"id": %d, "note": "n%d"}\n' % (i, i) for i in range(100_000))] * 3
    path = tmp_path / f"orders.{suffix}"
    if suffix.endswith(".gz"):
        gzipped(path, chunks)
    else:
        path.write_bytes(b"".join(chunks))
    outcome, _ = land(sessions, dataset, path, Limits(decompressed_bytes=2 * MiB, line_bytes=MiB))
    assert outcome.status == "quarantined"
    assert "more than 2 MiB of content (limit MONITORS_LIMIT_DECOMPRESSED_BYTES)" in outcome.reason


def test_a_header_of_100k_columns_is_quarantined_in_seconds(sessions, dataset, tmp_path):
    path = tmp_path / "orders.csv"
    names = ["id", "note"] + [f"c{i}" for i in range(100_000)]
    path.write_text(",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n")
    outcome, seconds = land(sessions, dataset, path)
    assert outcome.status == "quarantined"
    assert "100,002 columns in the header, more than the limit of 4,096 (MONITORS_LIMIT_COLUMNS)" in outcome.reason
    assert seconds < 10
    with sessions.begin() as session:
        started = time.perf_counter()
        with pytest.raises(ContractViolation, match="MONITORS_LIMIT_COLUMNS"):
            create_dataset(session, "wide", path)
        assert time.perf_counter() - started < 10


def test_a_json_line_of_too_many_keys_is_quarantined(sessions, dataset, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text('{"id": 1, "note": "a", ' + ", ".join(f'"k{i}": {i}' for i in range(50)) + "}\n")
    outcome, _ = land(sessions, dataset, path, Limits(columns=20))
    assert outcome.status == "quarantined"
    assert "52 columns, more than the limit of 20 (MONITORS_LIMIT_COLUMNS)" in outcome.reason


# ---- pattern checks --------------------------------------------------------------------

def test_a_catastrophic_pattern_on_a_long_value_answers_in_linear_time():
    frame = pd.DataFrame({"code": ["a" * 100_000 + "!", "aaa"]})
    started = time.perf_counter()
    (finding,) = matches_pattern(frame, "code", r"(a+)+$").findings
    assert finding.count == 1
    assert time.perf_counter() - started < 1


def test_a_pattern_that_needs_backtracking_is_refused_saying_why():
    frame = pd.DataFrame({"code": ["aa"]})
    with pytest.raises(ValueError, match="backreference or a lookaround"):
        matches_pattern(frame, "code", r"(a)\1")


# ---- dates at the edges ----------------------------------------------------------------

def good_csv(folder, name):
    path = folder / name
    path.write_text("id,note\n1,a\n")
    return path


@pytest.mark.parametrize("name", ["orders_9999-12-31.csv", "orders_0001-01-01.csv",
                                  "orders_1969-12-31.csv"])
def test_a_partition_outside_the_window_is_refused_naming_the_window(sessions, dataset, tmp_path, name):
    with sessions.begin() as session:
        with pytest.raises(Invalid, match=r"is outside the accepted window 1970-01-01 \.\. \d{4}-"):
            ingest_file(session, session.get(Dataset, dataset.id), good_csv(tmp_path, name))
    with sessions() as session:
        assert session.query(Batch).count() == 0


def test_an_impossible_date_in_the_name_is_called_so(sessions, dataset, tmp_path):
    with sessions.begin() as session:
        with pytest.raises(Invalid, match=r"2026-02-30 in the file name is not a calendar date"):
            ingest_file(session, session.get(Dataset, dataset.id),
                        good_csv(tmp_path, "orders_2026-02-30.csv"))


def test_the_cli_refuses_a_far_future_partition_in_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "MONITORS_HOME": str(home)}
    for key in ("MONITORS_DB_URL", "MONITORS_CONFIG"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-m", "monitors", "ingest", "--dataset", "orders",
                           "--create", str(good_csv(home, "orders_9999-12-31.csv"))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: partition 9999-12-31 is outside the accepted window")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_name_with_two_dates_is_not_landed_on_the_first(sessions, dataset, tmp_path):
    path = good_csv(tmp_path, "orders_2026-03-01_fixed_2026-03-02.csv")
    with sessions.begin() as session:
        with pytest.raises(Invalid, match=r"holds 2 dates \(2026-03-01, 2026-03-02\): give the "
                                          r"partition with --partition"):
            ingest_file(session, session.get(Dataset, dataset.id), path)
    # the same date twice is one date
    with sessions.begin() as session:
        outcome = ingest_file(session, session.get(Dataset, dataset.id),
                              good_csv(tmp_path, "orders_2026-03-01.2026-03-01.csv"))
    assert (outcome.status, outcome.partition) == ("ingested", dt.date(2026, 3, 1))


# ---- numbers past what the store holds, a reader gone, config mistakes (issue 14 #5-#7) -----

def cli_main(argv: list[str], capsys) -> tuple[int, str]:
    from monitors.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage error
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["alerts", "ack", str(2**64), "--by", "alice"],
    ["alerts", "show", "99999999999999999999"],
    ["alerts", "list", "--limit", str(2**63)],
    ["alerts", "list", "--offset", str(2**63)],
    ["runs", "cancel", str(2**64), "--by", "alice"],
    ["mutes", "add", "--by", "alice", "--reason", "r", "--dataset", "x",
     "--for", "100000000000000000000d"],
])
def test_numbers_past_what_the_store_holds_are_a_usage_line(settings, argv, capsys):
    """Before: OverflowError tracebacks from the driver or from timedelta."""
    code, err = cli_main(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and ("out of range" in err or "too long" in err), err


def test_a_listing_whose_reader_goes_away_ends_quietly(settings):
    """`datasets list | head -c1`: before, a BrokenPipeError at exit (code 120)."""
    env = {**os.environ, "MONITORS_HOME": str(settings.home)}
    process = subprocess.Popen([sys.executable, "-m", "monitors", "datasets", "list", "--json"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the command writes
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, err
    assert err == ""


def config_error(tmp_path, dataset: dict) -> str:
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml_dump({"datasets": [{"name": "orders", "format": "csv",
                                             "source": "landing/orders", **dataset}]}))
    with pytest.raises(ConfigError) as caught:
        parse_config(path.read_text(), path)
    return str(caught.value)


def yaml_dump(document) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize("declared, said", [
    ({"schedule": "0 6 31 2 *"}, "never fires"),
    ({"deadline_hours": float("inf")}, "finite number"),
    ({"deadline_hours": 1e300}, "less than or equal to 8784"),
    ({"checks": [{"check": "matches_pattern", "column": "code", "options": {"pattern": "([a-z"}}]},
     "not a valid regular expression"),
])
def test_config_mistakes_that_were_accepted_are_refused_at_load(tmp_path, declared, said):
    """Before, each loaded: the cron never ran, every run failed on the deadline, the pattern
    failed at the first batch."""
    message = config_error(tmp_path, declared)
    assert said in message and "monitors.yaml:" in message, message


@pytest.mark.parametrize("name", ["<b>x</b>", "two\nlines", "x" * 10_000, "![p](http://h/x.png)"],
                         ids=["html", "newline", "10k", "markdown"])
def test_create_follows_the_dataset_name_rule_on_both_stores(settings, sessions, tmp_path, name, capsys):
    """Before: accepted on SQLite, and a DataError traceback for the long one on PostgreSQL."""
    settings.home.mkdir(parents=True, exist_ok=True)
    code, err = cli_main(["ingest", "--dataset", name, "--create",
                          str(good_csv(settings.home, "orders_2026-03-02.csv"))], capsys)
    assert code == 2 and err.startswith("error: dataset name ") and err.count("\n") == 1, err
    with sessions() as session:
        assert session.query(Dataset).count() == 0


def test_create_keeps_no_dataset_whose_first_batch_breaks_its_contract(settings, sessions, tmp_path,
                                                                        monkeypatch, capsys):
    # the contract is inferred from the first block (the line limit's bytes): text after it
    monkeypatch.setenv("MONITORS_LIMIT_LINE_BYTES", "1024")
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "orders_2026-03-02.csv"
    path.write_text("id,note\n" + "".join(f"{i},n{i}\n" for i in range(400)) + "four hundred,x\n")
    code, err = cli_main(["ingest", "--dataset", "orders", "--create", str(path)], capsys)
    assert code == 2 and "breaks the contract inferred from it" in err, err
    assert "nothing was created" in err
    with sessions() as session:
        assert session.query(Dataset).count() == 0 and session.query(Batch).count() == 0


def test_a_null_json_line_is_quarantined_not_landed_as_a_row_of_nulls(sessions, tmp_path):
    with sessions.begin() as session:
        dataset = Dataset(name="events", format="jsonl", source=str(tmp_path),
                          contract=CONTRACT.to_json())
        session.add(dataset)
    path = tmp_path / "events_2026-03-02.jsonl"
    path.write_text('{"id": 1, "note": "a"}\n\nnull\n{"id": 2, "note": "b"}\n')
    outcome, _ = land(sessions, dataset, path)
    assert outcome.status == "quarantined"
    assert outcome.reason == "events_2026-03-02.jsonl: data row 2 is null, not a JSON object"


def test_two_racing_creates_of_one_name_make_one_dataset(settings, sessions, tmp_path):
    """Before, the second `ingest --create` died on the unique name with a traceback."""
    env = {**os.environ, "MONITORS_HOME": str(settings.home)}
    # a file that takes a moment to profile: the first creator's transaction is still open
    # when the others look for the dataset
    text = "id,note\n" + "".join(f"{i},n{i % 97}\n" for i in range(300_000))
    paths = []
    for n in range(3):
        (settings.home / f"d{n}").mkdir(parents=True)
        paths.append(settings.home / f"d{n}" / "orders_2026-03-02.csv")
        paths[-1].write_text(text)
    processes = [subprocess.Popen([sys.executable, "-m", "monitors", "ingest", "--dataset",
                                   "orders", "--create", str(path)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for path in paths]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
    assert all(code == 0 for code, _ in results), results
    with sessions() as session:
        assert session.query(Dataset).count() == 1
        in_force = session.query(Batch).filter(Batch.status == "ingested").count()
    assert in_force == 1


def test_a_backfill_from_before_the_first_delivery_raises_no_missing_alert_for_those_days(
        settings, sessions):
    """Before: one critical `missing` alert per day before the dataset's first delivery."""
    from sqlalchemy import select

    from monitors.lifecycle.alerts import list_alerts
    from monitors.pipeline import queue
    from monitors.pipeline.run import execute_run
    from tests.monitors.pipeline import DAYS, prepare

    prepare(settings, sessions)
    with sessions.begin() as session:
        orders = session.scalar(select(Dataset).where(Dataset.name == "orders"))
        run_id = queue.request_run(session, orders, DAYS[0] - dt.timedelta(days=60),
                                   DAYS[-1] + dt.timedelta(days=1), trigger="backfill",
                                   by="test").id
    execute_run(sessions, settings, run_id, notify=False)
    with sessions() as session:
        missing = [a["partition"] for a in list_alerts(session) if a["monitor"] == "freshness:missing"]
    # the day after the last delivery is missing; the sixty before the first are not
    assert missing == [(DAYS[-1] + dt.timedelta(days=1)).isoformat()]


@pytest.mark.parametrize("argv", [["--date", "0001-01-01"], ["--from", "0001-01-01", "--to", "2026-06-01"]])
def test_a_run_before_1970_is_refused_naming_the_window(settings, sessions, argv, capsys):
    """Before, `run --from 0001-01-01` queued a backfill of 739,000 partitions."""
    from tests.monitors.pipeline import prepare

    prepare(settings, sessions)
    code, err = cli_main(["run", "--dataset", "orders", *argv], capsys)
    assert code == 2 and "outside the accepted window 1970-01-01" in err, err
    with sessions() as session:
        assert session.query(Run).filter(Run.partition_from < dt.date(1970, 1, 1)).count() == 0
