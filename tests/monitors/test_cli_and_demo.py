"""The CLI contract of DESIGN.md, exercised as a user runs it: a real subprocess."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
END = "2026-06-30"
# one worker lands demo_home (a 40-day demo through the CLI) for every test here
pytestmark = pytest.mark.xdist_group("cli_demo")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MONITORS_HOME": str(home)}
    env.pop("MONITORS_DB_URL", None)
    env.pop("MONITORS_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "monitors", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("demo")
    done = cli(home, "demo", "--days", "40", "--seed", "3", "--end", END)
    assert done.returncode == 0, done.stderr
    return home


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_demo_lands_a_batch_a_day_and_quarantines_the_schema_change(demo_home):
    listing = cli(demo_home, "batches", "list", "--json")
    assert listing.returncode == 0
    batches = json.loads(listing.stdout)
    truth = json.loads((demo_home / "demo" / "incidents.json").read_text())
    by_kind = {i["kind"]: i for i in truth}

    customers = [b for b in batches if b["dataset"] == "customer_snapshot"]
    scores = [b for b in batches if b["dataset"] == "model_scores"]
    # the volume drop's day twice: its snapshot and scores were redelivered corrected
    drop = by_kind["volume_drop"]["partition"]
    assert [b["partition"] for b in batches if b["status"] == "superseded"] == [drop, drop]
    in_force = [b for b in customers if b["status"] != "superseded"]
    assert len(in_force) == len({b["partition"] for b in customers}) == 40
    # one day's scores never arrive
    assert len({b["partition"] for b in scores if b["status"] != "superseded"}) == 39
    quarantined = [b for b in customers if b["status"] == "quarantined"]
    assert [b["partition"] for b in quarantined] == [by_kind["schema_change"]["partition"]]
    assert "missing column(s) province" in quarantined[0]["reason"]
    assert "unexpected column(s) region" in quarantined[0]["reason"]
    assert by_kind["missing_batch"]["partition"] not in {b["partition"] for b in scores}
    assert {"dataset", "column", "partition", "kind", "description"} <= set(truth[0])


def test_the_demo_incidents_show_in_the_stored_metrics(demo_home):
    truth = {i["kind"]: i for i in json.loads((demo_home / "demo" / "incidents.json").read_text())}

    def series(*args):
        done = cli(demo_home, "metrics", "--json", "--dataset", *args)
        assert done.returncode == 0, done.stderr
        return {p["partition"]: p["value"] for p in json.loads(done.stdout)["points"]}

    nulls = series("customer_snapshot", "--column", "income", "--metric", "null_fraction")
    spike = truth["null_spike"]["partition"]
    assert nulls[spike] > 0.3 and max(v for p, v in nulls.items() if p != spike) < 0.1
    rows = series("customer_snapshot", "--metric", "row_count")
    drop = truth["volume_drop"]["partition"]
    # the drop's snapshot was superseded by its corrected redelivery, whose rows are usual
    median = sorted(rows.values())[len(rows) // 2]
    batches = json.loads(cli(demo_home, "batches", "list", "--json", "--dataset",
                             "customer_snapshot").stdout)
    replaced = [b["rows"] for b in batches if b["partition"] == drop and b["status"] == "superseded"]
    assert len(replaced) == 1 and replaced[0] < 0.5 * median and replaced[0] < 0.5 * rows[drop]
    assert truth["volume_drop"]["corrected_on"] > drop
    delay = series("customer_snapshot", "--metric", "arrival_delay_hours")
    assert delay[truth["late_batch"]["partition"]] == pytest.approx(16.0)
    partner = series("customer_snapshot", "--column", "channel", "--metric", "freq", "--key", "partner_app")
    assert min(partner) == truth["new_category"]["partition"]

    datasets = json.loads(cli(demo_home, "datasets", "list", "--json").stdout)
    scores = next(d for d in datasets if d["name"] == "model_scores")
    customers = next(d for d in datasets if d["name"] == "customer_snapshot")
    # every day after the demo's fixed end is missing too, by today's clock
    assert [p for p in scores["missing_partitions"] if p <= END] == [truth["missing_batch"]["partition"]]
    assert truth["late_batch"]["partition"] in customers["late_partitions"]


def test_the_demo_is_deterministic_under_its_seed(demo_home, tmp_path):
    again = cli(tmp_path, "demo", "--days", "40", "--seed", "3", "--end", END)
    assert again.returncode == 0, again.stderr
    assert digests(tmp_path / "landing") == digests(demo_home / "landing")
    other = cli(tmp_path / "other", "demo", "--days", "40", "--seed", "4", "--end", END)
    assert digests(tmp_path / "other" / "landing") != digests(demo_home / "landing")
    assert other.returncode == 0


def test_a_second_demo_run_on_the_same_store_changes_nothing(demo_home):
    before = cli(demo_home, "batches", "list", "--json").stdout
    assert cli(demo_home, "demo", "--days", "40", "--seed", "3", "--end", END).returncode == 0
    assert cli(demo_home, "batches", "list", "--json").stdout == before


def test_ingest_exit_codes(tmp_path):
    good = tmp_path / "sales_2026-01-05.csv"
    good.write_text("id,amount\n1,2.5\n2,3.0\n")
    bad = tmp_path / "sales_2026-01-06.csv"
    bad.write_text("id,amount\n1,abc\n")

    unknown = cli(tmp_path, "ingest", "--dataset", "sales", str(good))
    assert unknown.returncode == 2 and "unknown dataset 'sales'" in unknown.stderr

    created = cli(tmp_path, "ingest", "--dataset", "sales", "--create", "--json", str(good))
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "ingested"
    # the schedule a created dataset gets is said, not given silently
    assert "created dataset sales: 2 columns" in created.stderr
    assert "on schedule '0 6 * * *'" in created.stderr

    quarantined = cli(tmp_path, "ingest", "--dataset", "sales", str(bad))
    assert quarantined.returncode == 3
    assert "column 'amount'" in quarantined.stderr

    usage = cli(tmp_path, "ingest", "--dataset", "sales", str(good), "--partition", "yesterday")
    assert usage.returncode == 2

    listing = json.loads(cli(tmp_path, "batches", "list", "--json", "--dataset", "sales").stdout)
    assert [(b["partition"], b["status"], b["rows"]) for b in listing] == [
        ("2026-01-05", "ingested", 2), ("2026-01-06", "quarantined", None)]


def test_a_config_error_names_the_file_key_and_line(tmp_path):
    (tmp_path / "monitors.yaml").write_text(
        "datasets:\n  - name: orders\n    format: xml\n    source: landing/orders\n")
    good = tmp_path / "orders_2026-01-05.csv"
    good.write_text("id\n1\n")
    done = cli(tmp_path, "ingest", "--dataset", "orders", str(good))
    assert done.returncode == 2
    assert "monitors.yaml:3: datasets.0.format" in done.stderr


def test_help_lists_the_commands(tmp_path):
    done = cli(tmp_path, "--help")
    assert done.returncode == 0
    for command in ("demo", "ingest", "datasets", "batches", "metrics", "serve"):
        assert command in done.stdout
