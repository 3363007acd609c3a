"""What a verdict and a run were made of, on the pages: the alert's "judged on" line and the
chosen run's config version, code version and input fingerprints on the Pipeline page."""
from __future__ import annotations

from sqlalchemy import select

from monitors.lifecycle import alerts as lifecycle
from monitors.pipeline.run import code_version
from store.models import Batch
from tests.dashboard.apptest import open_page, plain


def test_an_alert_page_says_what_it_was_judged_on(app, demo, sessions):
    with sessions() as session:
        alert = next(a for a in lifecycle.list_alerts(session) if a["monitor"] == "volume:anomalies")
    open_page(app, "dashboard/views/alert.py", alert=str(alert["id"]))
    assert not app.exception
    judged = alert["judged_on"]
    [line] = [plain(c.value) for c in app.caption if "Judged on" in plain(c.value)]
    assert (f"Judged on {judged['points']} points {judged['start']}..{judged['end']} under config v1, "
            "detector anomalies {min_change: 0.1}") in line
    fingerprint = judged["inputs"][alert["partition"]]
    assert fingerprint[:12] in line


def test_the_pipeline_page_shows_a_runs_fingerprints(app, demo, sessions):
    open_page(app, "dashboard/views/pipeline.py")
    assert not app.exception
    chosen = app.selectbox(key="pipeline.log_run").value
    assert any(f"Run {chosen}** judged under config **v1**" in plain(m.value) for m in app.markdown)
    assert any(code_version() in plain(m.value) for m in app.markdown)
    inputs = next(d for d in app.dataframe if "fingerprint" in d.value.columns).value
    with sessions() as session:
        in_force = {b.fingerprint for b in session.scalars(select(Batch).where(Batch.status == "ingested"))}
    assert len(inputs) == 1 and set(inputs["fingerprint"]) <= in_force
    assert inputs["still_in_force"].all()


def test_an_alert_page_names_the_pinned_reference_it_was_judged_against(app, settings, sessions):
    from tests.monitors import test_references as drift

    drift.write(settings, references=[{"column": "score", "first": 14}])
    drift.run(sessions, settings, 0, drift.DAYS - 1)
    [alert] = drift.drift_alerts(sessions)
    open_page(app, "dashboard/views/alert.py", alert=str(alert.id))
    [line] = [plain(c.value) for c in app.caption if "Judged on" in plain(c.value)]
    assert f"pinned reference {drift.day(0)}..{drift.day(13)}" in line
