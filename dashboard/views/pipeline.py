"""Pipeline: schedules and their next runs, pause / resume, run now, rerun a partition,
backfill a range, cancel a queued request, the stages that build on each partition (held
by an alert, run, failed; retry a failed one), and the run history with its logs."""
import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import identity, paging, services
from dashboard.faults import shows_store_faults
from dashboard.identity import carry_name
from dashboard.text import md
from dashboard.times import fmt_when, when_column

state = st.session_state


def confirm(message: str) -> None:
    """The last action's confirmation stays on the page until the next action: a run that
    finishes redraws the page, which must not take the "queued" line with it."""
    state["pipeline.flash"] = f"{message} ({fmt_when(dt.datetime.now(dt.UTC))})"

st.title("Pipeline")
st.caption(services.hosted_worker_state())
schedules = services.schedules_frame()
if schedules.empty:
    st.info("No dataset yet, so nothing to schedule. Land the demo with `python -m monitors demo`.")
    st.stop()
who = identity.actor()

if state.get("pipeline.flash"):
    st.success(state["pipeline.flash"])

st.subheader("Schedules")
st.dataframe(schedules, hide_index=True, key="pipeline.schedules",
             column_config={"next_run_at": when_column("next run"),
                            "last_finished_at": when_column("last finished")})

dataset = st.selectbox("Dataset", schedules["dataset"].tolist(), key="pipeline.dataset")
row = schedules[schedules["dataset"] == dataset].iloc[0]
yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)

pause_col, run_col = st.columns(2)
with pause_col:
    if row["paused"]:
        st.warning(f"{md(dataset)}'s schedule is paused: no scheduled run until it is resumed.")
        if st.button("Resume schedule", key="pipeline.resume", disabled=not who.can_act, help=who.why_not):
            services.set_paused(dataset, False, by=who.name)
            confirm(f"{md(dataset)}: schedule resumed by {md(who.name)}.")
            st.rerun()
    else:
        st.caption(f"Next scheduled run: {fmt_when(row['next_run_at'])} "
                   f"({md(row['schedule'])})" if row["next_run_at"] is not None else "No next run.")
        if st.button("Pause schedule", key="pipeline.pause", disabled=not who.can_act, help=who.why_not):
            services.set_paused(dataset, True, by=who.name)
            confirm(f"{md(dataset)}: schedule paused by {md(who.name)}.")
            st.rerun()
with run_col:
    st.caption(f"Run now evaluates the latest due partition ({yesterday}).")
    if st.button("Run now", key="pipeline.run_now", type="primary", disabled=not who.can_act, help=who.why_not):
        run_id = services.request_run(dataset, yesterday, yesterday, by=who.name)
        confirm(f"Run {run_id} queued: {md(dataset)} {yesterday}.")
        st.rerun()


def queue_range(start: dt.date, end: dt.date, what: str) -> None:
    try:
        run_id = services.request_run(dataset, start, end, by=who.name)
    except ValueError as exc:
        st.error(md(exc))
    else:
        confirm(f"{what} queued as run {run_id}: {md(dataset)} {start} to {end}.")
        st.rerun()


rerun_col, backfill_col = st.columns(2)
with rerun_col, st.form("pipeline.rerun_form", border=True):
    partition = st.date_input("Rerun a partition", yesterday, max_value=yesterday,
                              key="pipeline.partition")
    if st.form_submit_button("Rerun", key="pipeline.rerun", disabled=not who.can_act, help=who.why_not):
        queue_range(partition, partition, "Rerun")
with backfill_col, st.form("pipeline.backfill_form", border=True):
    a, b = st.columns(2)
    start = a.date_input("Backfill from", yesterday - dt.timedelta(days=6), max_value=yesterday,
                         key="pipeline.backfill_from")
    end = b.date_input("to", yesterday, max_value=yesterday, key="pipeline.backfill_to")
    if st.form_submit_button("Backfill", key="pipeline.backfill", disabled=not who.can_act, help=who.why_not):
        queue_range(start, end, "Backfill")

def stage_filters() -> dict:
    """State and dataset filters over every dataset's stages. The dataset filter follows
    the dataset picked above until the person changes it (clearing it shows them all)."""
    if state.get("pipeline.stage_for") != dataset:
        state["pipeline.stage_for"] = dataset
        state["pipeline.stage_datasets"] = [dataset]
    if "pipeline.stage_states" not in state:
        state["pipeline.stage_states"] = []
    left, right = st.columns(2)
    left.multiselect("States", services.STAGE_STATES, key="pipeline.stage_states",
                     placeholder="any")
    right.multiselect("Datasets", schedules["dataset"].tolist(), key="pipeline.stage_datasets",
                      placeholder="any")
    return {"datasets": tuple(state["pipeline.stage_datasets"]),
            "states": tuple(state["pipeline.stage_states"])}


def stages_section() -> None:
    """Stages per partition, failed and held first, filtered and paged: a held one links
    to the alert holding it; the one picked can have its gate overridden, be skipped (each
    with a reason) or be run again from there, each action signed and audited."""
    st.subheader("Stages")
    query = stage_filters()
    page, _ = paging.current_page("pipeline.stages", query)
    frame, total, counts = services.stages_page(**query, page=page - 1)
    if not total:
        st.caption("No stage matches. A dataset's stages are filed once a run has verified a "
                   "partition; only a dataset that declares stages has any.")
        return
    st.caption(" · ".join(f"{counts[s]} {s}" for s in services.STAGE_STATES if s in counts)
               + " (one row per partition and stage)")
    st.caption(paging.showing(total, page, len(frame), "stage run(s)",
                              "failed, held, running and queued first, then the newest"))
    shown = frame.assign(held_by=frame["held_by"].map(
        lambda i: f"alert?alert={int(i)}{carry_name(who)}" if pd.notna(i) else None))
    st.dataframe(shown.drop(columns=["log_tail"]), hide_index=True, key="pipeline.stages",
                 column_config={"held_by": st.column_config.LinkColumn(
                                    "held by alert", display_text=r"alert\?alert=(\d+)"),
                                "started_at": when_column("started_at", seconds=True),
                                "finished_at": when_column("finished_at", seconds=True)})
    paging.page_picker("pipeline.stages", total)
    labels = {f"{r.dataset} · {r.partition} · {r.stage} · {r.state}": i
              for i, r in frame.iterrows()}
    acted_on = state.pop("pipeline.stage_acted_on", None)
    if acted_on is not None:  # its label changed with its state: keep it picked
        state["pipeline.stage"] = next(
            (label for label, i in labels.items()
             if tuple(frame.loc[i, ["dataset", "partition", "stage"]]) == acted_on),
            state.get("pipeline.stage"))
    picked = st.selectbox("Stage", list(labels), key="pipeline.stage")
    stage_actions(frame.loc[labels[picked]])


def stage_actions(row: pd.Series) -> None:
    facts = [f"**{md(row['stage'])}** of {md(row['dataset'])} on {row['partition']}: {row['state']}",
             f"attempt(s) {row['attempts']}"]
    if pd.notna(row["exit_code"]):
        facts.append(f"exit code {int(row['exit_code'])}")
    st.markdown(" · ".join(facts) + (f"  \n{md(row['note'])}" if row["note"] else ""))
    if pd.notna(row["held_by"]):
        st.page_link("dashboard/views/alert.py", label=f"Held by alert #{int(row['held_by'])} →",
                     query_params={"alert": str(int(row["held_by"]))})
    if row["log_tail"]:
        st.code(row["log_tail"], language=None)
    if row["state"] == "running":
        st.caption("Running: it can be run again once it is done.")
        return
    this = (row["dataset"], row["partition"], row["stage"])
    where = f"{md(row['dataset'])} {row['partition']}"
    dataset_of, partition = row["dataset"], dt.date.fromisoformat(row["partition"])
    if state.pop("pipeline.stage_done", False):
        # set before the box is drawn: the browser keeps what it showed otherwise, and a
        # stale reason would be offered for the next stage
        state["pipeline.stage_reason"] = ""
    reason = st.text_input("Reason (kept in the audit trail; needed to override or skip)",
                           key="pipeline.stage_reason")
    offered = [name for name, offer in (
        ("override", row["state"] == "held"),
        ("skip", row["state"] in ("queued", "held", "overridden", "failed")),
        ("rerun", True)) if offer]
    buttons = dict(zip(offered, st.columns([1] * len(offered) + [4 - len(offered)]), strict=False))
    help_ = {"override": "Let this partition's waiting stages past the alerts holding it now",
             "skip": "Pass over this stage: the next one may run",
             "rerun": "Queue it again and every stage after it, in order; the gate still applies"}

    def button(name: str, label: str, **kwargs) -> bool:
        return name in buttons and buttons[name].button(
            label, key=f"pipeline.stage_{name}", disabled=not who.can_act,
            help=who.why_not or help_[name], **kwargs)

    if button("override", "Override the gate", type="primary"):
        stage_action(lambda: services.override_gate(dataset_of, partition, by=who.name, reason=reason),
                     f"{where}: gate overridden by {md(who.name)} ({md(reason.strip())}); its "
                     "waiting stages run on the worker's next poll.", this)
    if button("skip", "Skip"):
        stage_action(lambda: services.skip_stage(dataset_of, partition, row["stage"], by=who.name,
                                                 reason=reason),
                     f"{where}: {md(row['stage'])} skipped by {md(who.name)} ({md(reason.strip())}).", this)
    if button("rerun", "Rerun from this stage"):
        stage_action(lambda: services.rerun_stages(dataset_of, partition, row["stage"], by=who.name),
                     f"{where}: {md(row['stage'])} and the stages after it queued again by "
                     f"{md(who.name)}; the worker runs them once the partition's gate is safe.", this)


def stage_action(call, done: str, stage: tuple[str, str, str]) -> None:
    """Do it; a refusal (no reason, the stage moved on since) is shown and changes nothing."""
    try:
        call()
    except ValueError as exc:
        st.error(f"Not changed: {md(exc)}")
    else:
        state["pipeline.stage_done"] = True  # the reason box starts empty again
        state["pipeline.stage_acted_on"] = stage
        confirm(done)
        st.rerun()


stages_section()

active = services.active_runs_frame()
refreshing = not active.empty


# refreshes itself while something is queued or running, and stays still otherwise
@st.fragment(run_every=2 if refreshing else None)
@shows_store_faults
def in_flight() -> None:
    live = services.active_runs_frame()
    st.subheader(f"In flight ({len(live)})")
    if live.empty:
        if refreshing:  # the last one just finished: redraw the page so its history shows it
            st.rerun(scope="app")
        st.caption("Nothing queued or running.")
    for run in live.itertuples():
        label = (f"run {run.id} · {md(run.dataset)} · {run.partition_from} to {run.partition_to} · "
                 f"{run.status} · {run.progress_done}/{run.progress_total} partition(s)"
                 f" · by {md(run.requested_by or '?')}")
        st.progress(float(run.progress), text=label)


in_flight()

queued = active[active["status"] == "queued"]
labels = {int(r.id): f"run {r.id} · {r.dataset} · {r.partition_from} to {r.partition_to}"
          for r in queued.itertuples()}
chosen = state.get("pipeline.cancel_id")
if isinstance(chosen, str):
    # a browser answers with the label it showed when the options changed since
    chosen = state.get("pipeline.cancel_labels", {}).get(chosen)
if chosen is not None and chosen not in labels:
    # picked while queued, claimed or finished since: a click gets the queue's answer, and
    # the run is not offered any more
    if state.get("pipeline.cancel"):
        try:
            services.cancel_run(int(chosen), by=who.name)
        except ValueError as exc:
            st.error(md(exc))
    del state["pipeline.cancel_id"]
state["pipeline.cancel_labels"] = {label: run_id for run_id, label in labels.items()}
if labels:
    with st.form("pipeline.cancel_form", border=False):
        c1, c2 = st.columns([3, 1])
        run_id = c1.selectbox("Queued run to cancel", list(labels), format_func=labels.get,
                              key="pipeline.cancel_id")
        # the run may have been claimed since this page was drawn: the queue says so
        if c2.form_submit_button("Cancel queued run", key="pipeline.cancel",
                                 disabled=not who.can_act, help=who.why_not) and run_id in labels:
            try:
                services.cancel_run(int(run_id), by=who.name)
            except ValueError as exc:
                st.error(md(exc))
            else:
                confirm(f"Run {int(run_id)} cancelled by {md(who.name)}.")
                del state["pipeline.cancel_id"]  # the next queued run comes first
                st.rerun()

st.subheader("Run history")
show = st.radio("Runs of", ["this dataset", "every dataset"], horizontal=True, key="pipeline.history_scope")
history = services.runs_frame(dataset if show == "this dataset" else None, limit=200)
st.dataframe(history.drop(columns=["progress_done", "progress_total"]), hide_index=True,
             key="pipeline.runs",
             column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
                            "requested_at": when_column("requested_at", seconds=True),
                            "started_at": when_column("started_at", seconds=True),
                            "finished_at": when_column("finished_at", seconds=True),
                            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.2f")})
if not history.empty:
    newest = int(history["id"].iloc[0])
    if state.get("pipeline.log_newest") != newest:
        state["pipeline.log_newest"] = state["pipeline.log_run"] = newest  # a new run: its log
    chosen = st.selectbox("Log of run", history["id"].tolist(), key="pipeline.log_run")
    chosen_row = history[history["id"] == chosen].iloc[0]
    st.caption(f"Stages: {md(chosen_row['stages'] or 'none recorded')}"
               + (f" · error: {md(chosen_row['error'])}" if chosen_row["error"] else ""))
    details = services.run_details(int(chosen))
    if details is not None:  # what the run was made of: config, code, input fingerprints
        version = details["config_version"]
        st.markdown(f"**Run {chosen}** judged under config "
                    + (f"**v{version}** (introduced by {md(details['config_introduced_by'])})"
                       if version is not None else md(details['config_hash'] or 'not recorded'))
                    + f" · code {md(details['code_version'] or 'not recorded')}"
                    + f" · {details['findings']} finding(s)")
        if details["inputs"]:
            st.dataframe(pd.DataFrame(details["inputs"])[
                ["partition", "fingerprint", "source", "rows", "still_in_force"]],
                hide_index=True, key="pipeline.inputs")
    st.code(services.run_log(int(chosen)) or "(no log lines)", language=None)
