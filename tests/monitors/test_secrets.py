"""Database passwords and webhook tokens never show: not in logs (at DEBUG), not in what a
run stores, not in the CLI's listings, whether the run happens here or in a subprocess."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from sqlalchemy.engine import make_url

from monitors.cli import main
from monitors.credentials import MissingSecret, expand, holds_secret, mask_url, scrub
from monitors.pipeline.run import execute_run
from monitors.settings import load_settings
from store.models import Dataset, Run
from tests.secret_sources import (
    DAY,
    PASSWORD,
    TOKEN,
    cli,
    leaky_store,
    request,
    store_text,
)

SECRETS = (PASSWORD, TOKEN)


@pytest.fixture
def leaky(settings, postgres_server, monkeypatch):
    return leaky_store(settings, postgres_server, monkeypatch)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} shows a secret:\n{text}"


def test_a_run_here_and_in_a_subprocess_shows_no_secret(leaky, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # it holds its own loggers at WARNING
    for dataset in ("payments", "payments_down"):
        execute_run(leaky.sessions, leaky.settings, request(leaky, dataset, DAY))
    assert "webhook 127.0.0.1:" in caplog.text  # the dead webhooks were tried, and named by host
    assert "sqlalchemy.engine" in caplog.text   # the store's debug logging (rows too) was on
    assert_clean(caplog.text, "the log at DEBUG")

    done = [cli(leaky, "run", "--dataset", name, "--date", str(DAY + dt.timedelta(days=1)), "--now")
            for name in ("payments", "payments_down")]
    assert "webhook 127.0.0.1:" in done[1].stderr
    assert done[0].returncode == 0, done[0].stderr
    # a SQL source that is down is an outage: the run fails on purpose and says why
    assert done[1].returncode == 1, done[1].stderr
    assert "source unreachable (connection failed:" in done[1].stderr
    for process in done:
        assert_clean(process.stdout + process.stderr, "run --now")

    def listing(*args: str) -> str:
        assert main(list(args)) == 0
        out, err = capsys.readouterr()
        assert_clean(out + err + caplog.text, " ".join(args))
        return out

    runs = json.loads(listing("runs", "list", "--json"))
    assert sorted((r["dataset"], r["status"]) for r in runs) == \
        [("payments", "succeeded")] * 2 + [("payments_down", "failed")] * 2
    failed = [r["error"] for r in runs if r["dataset"] == "payments_down"]
    assert all("source unreachable" in e and "Connection refused" in e for e in failed), failed
    # an outage is no verdict on the data: nothing of the source that is down is quarantined
    batches = json.loads(listing("batches", "list", "--json"))
    assert sorted((b["dataset"], b["status"]) for b in batches) == [("payments", "ingested")] * 2
    alerts = json.loads(listing("alerts", "list", "--json"))
    outage = [a for a in alerts if a["dataset"] == "payments_down" and a["monitor"] == "source:unreachable"]
    assert outage and all("Connection refused" in a["message"] for a in outage), alerts
    for args in (["datasets", "list"], ["runs", "list"], ["batches", "list"], ["alerts", "list"]):
        listing(*args)
    # what a person opens on the failure says what failed, without the password
    for args in ([["alerts", "show", str(a["id"])] for a in outage]
                 + [["runs", "show", str(r["id"])] for r in runs if r["status"] == "failed"]):
        assert "Connection refused" in listing(*args), f"{' '.join(args)} does not say what failed"
    sources = {d["name"]: d["source"] for d in json.loads(listing("datasets", "list", "--json"))}
    assert sources["payments"].startswith("postgresql://postgres:${WAREHOUSE_PASSWORD}@127.0.0.1:")

    for table, text in store_text(leaky).items():
        assert_clean(text, f"table {table}")


def test_a_password_written_into_the_config_is_refused_without_showing_it(leaky):
    text = leaky.settings.config_path.read_text()
    leaky.settings.config_path.write_text(text.replace("${WAREHOUSE_PASSWORD}", PASSWORD))
    refused = cli(leaky, "run", "--dataset", "payments", "--date", str(DAY), "--now")
    assert refused.returncode == 2
    assert "monitors.yaml:4: datasets.0.source: Value error, the URL holds a password" in refused.stderr
    assert_clean(refused.stdout + refused.stderr, "the config error")


def test_a_password_stored_before_the_rule_is_masked_in_listings(leaky, capsys):
    with leaky.sessions.begin() as session:
        session.add(Dataset(name="legacy", format="sql", table_name="payments",
                            source=f"postgresql://reader:{PASSWORD}@warehouse/sales"))
    assert main(["datasets", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    sources = {d["name"]: d["source"] for d in json.loads(out)}
    assert sources["legacy"] == "postgresql://reader:***@warehouse/sales"
    assert_clean(out + err, "datasets list")


def test_the_store_url_is_not_in_the_settings_repr(monkeypatch):
    monkeypatch.setenv("MONITORS_DB_URL", f"postgresql://monitors:{PASSWORD}@db/monitors")
    assert PASSWORD not in repr(load_settings())


def test_a_source_names_its_password_and_it_is_read_when_connecting():
    source = "postgresql://reader:${WAREHOUSE_PASSWORD}@warehouse/sales"
    assert expand(source, {"WAREHOUSE_PASSWORD": PASSWORD}) == f"postgresql://reader:{PASSWORD}@warehouse/sales"
    with pytest.raises(MissingSecret, match="WAREHOUSE_PASSWORD, which is not set"):
        expand(source, {})
    assert mask_url(source) == source and not holds_secret(source)  # a reference is no secret
    assert holds_secret(source.replace("${WAREHOUSE_PASSWORD}", PASSWORD))
    assert holds_secret(f"postgresql://warehouse/sales?password={PASSWORD}")
    assert not holds_secret("postgresql://warehouse/sales?password=${WAREHOUSE_PASSWORD}")


def test_masking_hides_passwords_and_secret_parameters():
    assert mask_url(f"postgresql://reader:{PASSWORD}@warehouse:5432/sales") == \
        "postgresql://reader:***@warehouse:5432/sales"
    assert mask_url(f"postgresql://warehouse/sales?password={PASSWORD}&sslmode=require") == \
        "postgresql://warehouse/sales?password=***&sslmode=require"
    assert PASSWORD not in mask_url(f"not a URL but {PASSWORD}")
    url = make_url(f"postgresql://reader:{PASSWORD}@warehouse/sales?api_key={TOKEN}")
    assert scrub(f"driver said {PASSWORD} and {TOKEN}", url) == "driver said *** and ***"


def test_a_password_variable_is_read_when_connecting(leaky, monkeypatch):
    monkeypatch.delenv("WAREHOUSE_PASSWORD")
    run_id = request(leaky, "payments", DAY)
    execute_run(leaky.sessions, leaky.settings, run_id, notify=False)
    with leaky.sessions() as session:
        run = session.get(Run, run_id)
    assert run.status == "failed"
    assert run.error == "MissingSecret: the SQL source needs the environment variable " \
                        "WAREHOUSE_PASSWORD, which is not set"
