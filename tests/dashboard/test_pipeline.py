"""The pipeline page in AppTest: schedules, pause / resume, run now, backfill, cancel."""
from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import streamlit as st
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from monitors.pipeline import queue
from store.models import Dataset, Run
from tests.dashboard.apptest import plain, sign_in

PAGE = "dashboard/views/pipeline.py"
YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def open_page(app: AppTest, dataset: str = "customer_snapshot") -> AppTest:
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception
    if app.selectbox(key="pipeline.dataset").value != dataset:
        app.selectbox(key="pipeline.dataset").select(dataset).run()
    return app


def runs(sessions) -> list[Run]:
    with sessions() as session:
        return list(session.scalars(select(Run).order_by(Run.id)).all())


def status(sessions, run_id: int) -> str:
    with sessions() as session:
        return session.scalar(select(Run.status).where(Run.id == run_id))


def test_an_empty_store_says_how_to_begin(app):
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception
    assert "python -m monitors demo" in app.info[0].value


def test_schedules_show_the_next_run_from_the_cron(app, demo):
    open_page(app)
    schedules = app.dataframe[0].value.set_index("dataset")
    # the demo's crons: 07:00 and 08:00 UTC every day
    assert schedules.loc["customer_snapshot", "next_run_at"].hour == 7
    assert schedules.loc["model_scores", "next_run_at"].hour == 8
    assert schedules.loc["customer_snapshot", "watermark"] == dt.date(2026, 6, 30)
    history = app.dataframe[1].value
    assert len(history) == 40 and set(history["status"]) == {"succeeded"}
    assert history["stages"].str.contains("evaluate").all()
    assert "customer_snapshot" in app.code[0].value  # the newest run's log


def test_pause_changes_the_store_and_resume_restores_it(app, demo, sessions):
    open_page(app)
    app.button(key="pipeline.pause").click().run()
    assert not app.exception
    with sessions() as session:
        assert session.scalar(select(Dataset.paused).where(Dataset.name == "customer_snapshot"))
    schedules = app.dataframe[0].value.set_index("dataset")
    assert schedules.loc["customer_snapshot", "paused"]
    assert pd.isna(schedules.loc["customer_snapshot", "next_run_at"])  # a paused schedule never fires
    assert any("paused by alice" in s.value for s in app.success)

    app.button(key="pipeline.resume").click().run()
    with sessions() as session:
        assert not session.scalar(select(Dataset.paused).where(Dataset.name == "customer_snapshot"))


def test_run_now_queues_the_latest_due_partition(app, demo, sessions):
    before = len(runs(sessions))
    open_page(app)
    app.button(key="pipeline.run_now").click().run()
    assert not app.exception
    new = runs(sessions)[before:]
    assert [(r.status, r.trigger, r.partition_from, r.partition_to, r.requested_by) for r in new] == \
        [("queued", "manual", YESTERDAY, YESTERDAY, "alice")]
    assert any(f"Run {new[0].id} queued" in s.value for s in app.success)


def test_backfill_queues_the_chosen_range_and_shows_progress(app, demo, sessions):
    open_page(app, "model_scores")
    app.date_input(key="pipeline.backfill_from").set_value(dt.date(2026, 6, 1))
    app.date_input(key="pipeline.backfill_to").set_value(dt.date(2026, 6, 10))
    app.button(key="pipeline.backfill").click().run()
    assert not app.exception
    run = runs(sessions)[-1]
    assert (run.trigger, run.partition_from, run.partition_to, run.progress_total) == \
        ("backfill", dt.date(2026, 6, 1), dt.date(2026, 6, 10), 10)
    assert any(f"run {run.id} · model_scores" in plain(bar.proto.text) for bar in app.get("progress"))


def test_a_queued_run_is_cancelled_and_a_finished_one_is_refused(app, demo, sessions):
    open_page(app)
    app.button(key="pipeline.run_now").click().run()
    queued = runs(sessions)[-1]
    assert app.selectbox(key="pipeline.cancel_id").value == queued.id
    app.button(key="pipeline.cancel").click().run()
    assert not app.exception
    assert runs(sessions)[-1].status == "cancelled"
    assert any(f"Run {queued.id} cancelled by alice" in s.value for s in app.success)

    # a run the worker finishes between the page's drawing and the click is not cancelled
    app.date_input(key="pipeline.partition").set_value(dt.date(2026, 6, 2))
    app.button(key="pipeline.rerun").click().run()
    rerun = runs(sessions)[-1]
    assert app.selectbox(key="pipeline.cancel_id").value == rerun.id
    with sessions.begin() as session:
        queue.claim_next(session, "worker-1", dt.timedelta(minutes=1))
        queue.finish(session, rerun.id, "succeeded")
    app.button(key="pipeline.cancel").click().run()
    assert f"run {rerun.id} is already succeeded" in app.error[0].value
    assert runs(sessions)[-1].status == "succeeded"


def test_actions_wait_for_a_name(app, demo):
    sign_in(app, "")
    open_page(app)
    assert app.button(key="pipeline.run_now").disabled
    assert app.button(key="pipeline.pause").disabled


def test_the_worker_is_hosted_only_when_the_setting_asks(app, demo, sessions, monkeypatch):
    open_page(app)
    assert "No worker runs inside the dashboard" in app.caption[0].value

    with sessions.begin() as session:  # no schedule: the worker executes our request only
        session.execute(update(Dataset).values(paused=True))
    monkeypatch.setenv("MONITORS_DASHBOARD_WORKER", "1")
    try:
        app.date_input(key="pipeline.partition").set_value(dt.date(2026, 6, 30))
        app.button(key="pipeline.rerun").click().run()
        assert "This dashboard hosts the worker" in app.caption[0].value
        rerun = runs(sessions)[-1].id
        deadline = time.monotonic() + 60
        while status(sessions, rerun) in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status(sessions, rerun) == "succeeded"
    finally:
        st.cache_resource.clear()  # stops the hosted worker (its on_release)


def finish(sessions, run_id: int) -> None:
    """A worker (another process, as far as the page knows) claims and finishes the run."""
    with sessions.begin() as session:
        queue.claim_next(session, "worker-1", dt.timedelta(minutes=1))
        queue.finish(session, run_id, "succeeded")


def test_after_a_run_finishes_the_page_shows_it_finished_everywhere(app, demo, sessions):
    """Issue 13 #5: the schedules said `queued 1`, the cancel list offered the finished run,
    the "queued" confirmation vanished and the log stayed on an older run."""
    open_page(app)
    app.button(key="pipeline.run_now").click().run()
    run_id = runs(sessions)[-1].id
    schedules = app.dataframe[0].value.set_index("dataset")
    assert schedules.loc["customer_snapshot", "queued"] == 1
    assert app.selectbox(key="pipeline.cancel_id").value == run_id

    finish(sessions, run_id)
    app.run()
    assert not app.exception
    schedules = app.dataframe[0].value.set_index("dataset")
    assert schedules.loc["customer_snapshot", "queued"] == 0
    assert schedules.loc["customer_snapshot", "last_status"] == "succeeded"
    assert not [s for s in app.selectbox if s.key == "pipeline.cancel_id"], "nothing to cancel"
    assert any(f"Run {run_id} queued" in s.value for s in app.success), "the confirmation stays"
    assert app.selectbox(key="pipeline.log_run").value == run_id, "the newest run's log"


# -- stages: the demo's scores are scored and delivered, held on the bundling campaign's
# first day (its level shift is a warning, and the scores' gate holds on warnings) until a
# person accepts it; the volume drop's day is released by its corrected redelivery


def volume_drop(settings) -> str:
    """The held day: the level shift's (the volume drop's is delivered once corrected)."""
    import json

    incidents = json.loads((settings.home / "demo" / "incidents.json").read_text())
    return next(i["partition"] for i in incidents if i["kind"] == "level_shift")


def stages_table(app: AppTest) -> pd.DataFrame:
    return next(d.value for d in app.dataframe if "stage" in d.value.columns)


def root_alert(sessions, partition: str) -> int:
    """The root of the incident holding the scores' gate on `partition`."""
    from monitors.pipeline.gates import evaluate
    from store.models import Alert, utcnow

    with sessions() as session:
        scores = session.scalar(select(Dataset.id).where(Dataset.name == "model_scores"))
        holding = evaluate(session, scores, dt.date.fromisoformat(partition), now=utcnow()).holding
        first = session.get(Alert, holding[0].id)
        return first.caused_by or first.id


def test_stages_show_the_held_day_with_the_alert_holding_it(app, demo, sessions):
    drop = volume_drop(demo)
    root = root_alert(sessions, drop)
    open_page(app, "model_scores")
    table = stages_table(app).set_index(["partition", "stage"])
    assert table.loc[(drop, "score"), "state"] == "held"
    assert table.loc[(drop, "deliver"), "state"] == "held"
    # a link to the alert's page (carrying who is looking)
    assert table.loc[(drop, "score"), "held_by"].split("&")[0] == f"alert?alert={root}"
    delivered = table.xs("deliver", level="stage")
    assert (delivered["state"] == "succeeded").sum() > len(delivered) / 2
    # what a person looks at first is a held or failed stage, with a link to its alert
    assert app.selectbox(key="pipeline.stage").value.endswith("held")
    app.selectbox(key="pipeline.stage").select(f"{drop} · score · held").run()
    assert any(f"Held by alert #{root}" in link.proto.label for link in app.get("page_link"))


def test_a_failed_stage_shows_its_exit_code_and_log_and_is_retried(app, demo, sessions):
    from monitors.lifecycle.alerts import resolve
    from monitors.pipeline.stages import list_stages, run_due_stages

    drop = volume_drop(demo)
    # released by hand, but its scores file is gone: the scoring stage fails (twice: a retry)
    with sessions.begin() as session:
        resolve(session, root_alert(sessions, drop), by="alice", resolution="fixed")
    (demo.home / "landing" / "model_scores" / f"model_scores_{drop}.parquet").unlink()
    run_due_stages(sessions, demo, worker_id="test")
    open_page(app, "model_scores")
    table = stages_table(app).set_index(["partition", "stage"])
    assert (table.loc[(drop, "score"), "state"], table.loc[(drop, "score"), "exit_code"],
            table.loc[(drop, "score"), "attempts"]) == ("failed", 1, 2)
    assert app.selectbox(key="pipeline.stage").value == f"{drop} · score · failed"
    assert "no model scores" in app.code[0].value  # the log's tail
    assert any("exit code 1" in plain(m.value) for m in app.markdown)

    app.button(key="pipeline.stage_retry").click().run()
    assert not app.exception
    with sessions() as session:
        after = {s["stage"]: s for s in list_stages(session, "model_scores",
                                                     dt.date.fromisoformat(drop))}
    assert (after["score"]["state"], after["score"]["attempts"]) == ("queued", 0)
    assert after["deliver"]["state"] == "queued"
    assert any("score queued again by alice" in plain(s.value) for s in app.success)
