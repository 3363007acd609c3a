"""The pipeline page in AppTest: schedules, pause / resume, run now, backfill, cancel."""
from __future__ import annotations

import datetime as dt
import json
import re
import time

import pandas as pd
import streamlit as st
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from monitors.pipeline import queue
from store.models import Dataset, Run
from tests.conftest import corrected_days
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
    # a run a day, and a rerun of each day the upstream redelivered corrected
    corrected = corrected_days(demo.home)
    assert corrected
    assert len(history) == 40 + len(corrected) and set(history["status"]) == {"succeeded"}
    per_day = history["partition_from"].astype(str).value_counts()
    assert {day for day, n in per_day.items() if n > 1} == corrected
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
    # most days were delivered: the page's counts cover every row, not only this page's
    caption = next(c.value for c in app.caption if " succeeded" in c.value)
    counts = {state: int(n) for n, state in re.findall(r"(\d+) (\w+)", caption)}
    assert counts["succeeded"] > 2 * counts["held"]
    # what a person looks at first is a held or failed stage, with a link to its alert
    assert app.selectbox(key="pipeline.stage").value.endswith("held")
    app.selectbox(key="pipeline.stage").select(f"model_scores · {drop} · score · held").run()
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
    assert app.selectbox(key="pipeline.stage").value == f"model_scores · {drop} · score · failed"
    assert "no model scores" in app.code[0].value  # the log's tail
    assert any("exit code 1" in plain(m.value) for m in app.markdown)

    app.button(key="pipeline.stage_rerun").click().run()
    assert not app.exception
    with sessions() as session:
        after = {s["stage"]: s for s in list_stages(session, "model_scores",
                                                     dt.date.fromisoformat(drop))}
    assert (after["score"]["state"], after["score"]["attempts"]) == ("queued", 0)
    assert after["deliver"]["state"] == "queued"
    assert any("score and the stages after it queued again by alice" in plain(s.value)
               for s in app.success)


# -- acting on the picked stage: override the gate, skip, rerun from it (each audited)


def stage_states(sessions, partition: str) -> dict[str, tuple]:
    from monitors.pipeline.stages import list_stages

    with sessions() as session:
        return {s["stage"]: (s["state"], s["held_by"], s["note"])
                for s in list_stages(session, "model_scores", dt.date.fromisoformat(partition))}


def audit(sessions) -> tuple[list[tuple], list[tuple]]:
    """The stages' audit trail and the gates' (every dataset, every partition)."""
    from store.models import GateChange, StageAction

    with sessions() as session:
        actions = [(a.dataset_id, a.partition, a.stage, a.action, a.by, a.reason, a.alert_ids)
                   for a in session.scalars(select(StageAction).order_by(StageAction.id))]
        gates = [(g.dataset_id, g.partition, g.verdict, g.why)
                 for g in session.scalars(select(GateChange).order_by(GateChange.id))]
    return actions, gates


def pick(app: AppTest, partition: str, stage: str, state: str) -> None:
    app.selectbox(key="pipeline.stage").select(f"model_scores · {partition} · {stage} · {state}").run()
    assert not app.exception


def test_an_override_without_a_reason_is_refused_and_changes_nothing(app, demo, sessions):
    drop = volume_drop(demo)
    open_page(app, "model_scores")
    pick(app, drop, "score", "held")
    before_states, before_audit = stage_states(sessions, drop), audit(sessions)

    for blank in ("", "   "):
        app.text_input(key="pipeline.stage_reason").input(blank).run()
        app.button(key="pipeline.stage_override").click().run()
        assert not app.exception
        assert any("Not changed: an override needs a reason" in plain(e.value) for e in app.error)
        assert stage_states(sessions, drop) == before_states
        assert audit(sessions) == before_audit
    assert stages_table(app).set_index(["partition", "stage"]).loc[(drop, "score"), "state"] == "held"


def test_an_override_with_a_reason_lets_the_held_stages_past_and_is_audited(app, demo, sessions):
    drop = volume_drop(demo)
    root = root_alert(sessions, drop)
    open_page(app, "model_scores")
    pick(app, drop, "score", "held")
    actions_before, _ = audit(sessions)

    app.text_input(key="pipeline.stage_reason").input("vendor confirmed the drop").run()
    app.button(key="pipeline.stage_override").click().run()
    assert not app.exception and not app.error
    after = stage_states(sessions, drop)
    assert {s[0] for s in after.values()} == {"overridden"}
    assert "overridden by alice: vendor confirmed the drop" in after["score"][2]
    actions, _ = audit(sessions)
    (new,) = actions[len(actions_before):]
    assert new[3:6] == ("override", "alice", "vendor confirmed the drop")
    assert new[6][0] == root  # the alerts it let past, the most upstream first
    assert any("gate overridden by alice" in plain(s.value) for s in app.success)
    table = stages_table(app).set_index(["partition", "stage"])
    assert table.loc[(drop, "score"), "state"] == "overridden"
    assert app.text_input(key="pipeline.stage_reason").value == ""  # ready for the next one
    assert app.selectbox(key="pipeline.stage").value == f"model_scores · {drop} · score · overridden"


def test_skip_needs_a_reason_then_passes_over_the_stage(app, demo, sessions):
    drop = volume_drop(demo)
    open_page(app, "model_scores")
    pick(app, drop, "score", "held")
    before_states, before_audit = stage_states(sessions, drop), audit(sessions)
    app.button(key="pipeline.stage_skip").click().run()
    assert any("Not changed: skipping a stage needs a reason" in plain(e.value) for e in app.error)
    assert (stage_states(sessions, drop), audit(sessions)) == (before_states, before_audit)

    app.text_input(key="pipeline.stage_reason").input("scores were made by hand").run()
    app.button(key="pipeline.stage_skip").click().run()
    assert not app.exception and not app.error
    after = stage_states(sessions, drop)
    assert after["score"][0] == "skipped" and after["deliver"][0] == "held"
    actions, _ = audit(sessions)
    assert actions[-1][2:6] == ("score", "skip", "alice", "scores were made by hand")


def test_rerun_from_a_stage_queues_it_and_the_stages_after_it_only(app, demo, sessions):
    from monitors.pipeline.stages import list_stages

    with sessions() as session:
        done = [s for s in list_stages(session, "model_scores")
                if s["stage"] == "deliver" and s["state"] == "succeeded"]
    day = done[-1]["partition"]  # the newest delivered day: on the first page
    open_page(app, "model_scores")

    pick(app, day, "deliver", "succeeded")
    app.button(key="pipeline.stage_rerun").click().run()
    assert not app.exception and not app.error
    after = stage_states(sessions, day)
    assert (after["score"][0], after["deliver"][0]) == ("succeeded", "queued")

    pick(app, day, "score", "succeeded")
    app.button(key="pipeline.stage_rerun").click().run()
    after = stage_states(sessions, day)
    assert (after["score"][0], after["deliver"][0]) == ("queued", "queued")
    assert "rerun from score by alice" in after["deliver"][2]
    actions, _ = audit(sessions)
    assert [a[2:5] for a in actions[-2:]] == [("deliver", "run", "alice"), ("score", "run", "alice")]


def test_stages_are_filtered_by_state_and_dataset_and_paged_failed_and_held_first(
        app, demo, sessions, monkeypatch):
    from dashboard import services
    from monitors.pipeline.stages import list_stages
    from store.models import StageRun

    with sessions.begin() as session:  # one old stage failed: it comes before the held ones
        oldest = session.scalars(select(StageRun).order_by(StageRun.partition)).first()
        oldest.state, failed = "failed", (oldest.partition.isoformat(), oldest.stage)
    with sessions() as session:
        every = list_stages(session, "model_scores")
    held = sorted(((s["partition"], s["position"], s["stage"]) for s in every
                   if s["state"] == "held"), key=lambda h: (-dt.date.fromisoformat(h[0]).toordinal(), h[1]))
    assert (volume_drop(demo), 0, "score") in held
    open_page(app, "model_scores")
    first = stages_table(app)
    assert len(every) > services.PAGE_SIZE == len(first)  # the demo's stages are paged
    assert any(f"{len(every)} stage run(s) match; showing 1–{services.PAGE_SIZE}" in c.value
               for c in app.caption)
    top = [tuple(r) for r in first[["partition", "stage", "state"]].head(1 + len(held)).values]
    assert top == [(*failed, "failed"), *((p, s, "held") for p, _, s in held)]
    # after those, the newest partition first
    rest = first["partition"].iloc[1 + len(held):].tolist()
    assert rest == sorted(rest, reverse=True)

    monkeypatch.setattr(services, "PAGE_SIZE", 7)
    app.run()
    pages = [stages_table(app)]
    app.number_input(key="pipeline.stages.page").set_value(2).run()
    pages.append(stages_table(app))
    keys = [set(zip(p["partition"], p["stage"], strict=True)) for p in pages]
    assert len(pages[1]) == 7 and not keys[0] & keys[1]

    # a state filter: back to the first page, only those rows
    app.multiselect(key="pipeline.stage_states").set_value(["held"]).run()
    only_held = stages_table(app)
    assert set(only_held["state"]) == {"held"} and len(only_held) == min(len(held), 7)
    assert app.session_state["pipeline.stages.page"] == 1
    # a dataset without stages: nothing; every dataset: model_scores' again
    app.multiselect(key="pipeline.stage_datasets").set_value(["customer_snapshot"]).run()
    assert not [d for d in app.dataframe if "stage" in d.value.columns]
    assert any("No stage matches" in c.value for c in app.caption)
    app.multiselect(key="pipeline.stage_datasets").set_value([]).run()
    assert set(stages_table(app)["dataset"]) == {"model_scores"}
