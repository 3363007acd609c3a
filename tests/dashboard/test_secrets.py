"""No dashboard page shows a database password or a webhook token, whichever dataset, alert
or run it is opened on."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from monitors.pipeline.run import OUTAGE_MONITOR, execute_run
from store.models import Alert, Dataset, Run
from tests.dashboard.apptest import open_page
from tests.secret_sources import DAY, PASSWORD, TOKEN, leaky_store, request


@pytest.fixture
def leaky(settings, postgres_server, monkeypatch):
    leaky = leaky_store(settings, postgres_server, monkeypatch)
    for day in (DAY, DAY + dt.timedelta(days=1)):
        for dataset in ("payments", "payments_down"):
            execute_run(leaky.sessions, leaky.settings, request(leaky, dataset, day))
    return leaky


def page_text(at: AppTest) -> str:
    """Everything the page sent to the browser: each element's message, table data included."""
    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            yield str(proto)
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    return "\n".join(walk(at._tree))


def assert_clean(at: AppTest, where: str, shows: str = "payments") -> None:
    assert not at.exception, at.exception
    text = page_text(at)
    assert shows in text, f"{where} did not render its data"
    for secret in (PASSWORD, TOKEN):
        assert secret not in text, f"{where} shows a secret"


def test_no_page_shows_a_secret(leaky, app):
    with leaky.sessions() as session:
        alert_ids = session.scalars(select(Alert.id).order_by(Alert.id)).all()
        outage_ids = set(session.scalars(select(Alert.id).where(Alert.monitor == OUTAGE_MONITOR)))
        runs = session.execute(select(Dataset.name, Run.id).join(Run, Run.dataset_id == Dataset.id)
                               .order_by(Run.id)).all()
    assert alert_ids and outage_ids and len(runs) == 4
    for page in ("overview", "alerts"):
        assert_clean(open_page(app, page), page)
    assert_clean(open_page(app, "model_outputs"), "model outputs", shows="Model outputs")
    for alert_id in alert_ids:
        assert_clean(open_page(app, "alert", alert=str(alert_id)), f"alert {alert_id}")
        if alert_id in outage_ids:  # the outage's page says what failed
            assert "Connection refused" in page_text(app), f"alert {alert_id} hides the failure"
    # widgets keep their state only while their page is shown: pick on the open page
    open_page(app, "datasets")
    for dataset in ("payments", "payments_down"):
        app.selectbox(key="datasets.pick").set_value(dataset).run()
        assert_clean(app, f"datasets of {dataset}")
    open_page(app, "monitors")
    for dataset in ("payments", "payments_down"):
        app.selectbox(key="monitors.pick").set_value(dataset).run()
        assert_clean(app, f"monitors of {dataset}")
    open_page(app, "pipeline")
    for dataset, run_id in runs:
        app.selectbox(key="pipeline.dataset").set_value(dataset).run()
        app.selectbox(key="pipeline.log_run").set_value(run_id).run()
        assert f"{dataset}: 1 partition(s)" in page_text(app)  # the run's log is shown
        if dataset == "payments_down":  # the source is down: the log says so, and that is searched
            assert "Connection refused" in page_text(app), f"run {run_id}'s log hides the failure"
        assert_clean(app, f"pipeline, log of run {run_id}")
