"""Page load time in a real browser (issue 13): each dashboard page on the demo opened in
Chromium as a new Streamlit session, timed from navigation until the page is drawn and
Streamlit is idle: the page's heading is shown, the app's script state is `notRunning` (the
server sent `script_finished` and the front end took it in) and no element is still a
loading skeleton (a lazily loaded chart or table not drawn yet).

Two ways of opening a page, both a new session:
- `tab`: a new tab of a browser that has been to the dashboard before (its HTTP cache and
  compiled-code cache are warm): what a person clicking "open ↗" waits for.
- `cold`: a fresh browser profile each time: a first visit ever (`--cold`).

Each load is broken down from the page's own clock and its websocket frames: the document
parsed (DOMContentLoaded), the websocket opened, the first element (delta) received, the
script finished, idle. The server's CPU per load is read from /proc (its script runs, the
websocket, serialisation), so what is left is the browser's.

`--baseline REF` serves a git revision of this repository (`git archive` into a temporary
directory) next to this checkout and loads each page on the two alternately (the order
swapped every round), so both see the same load from the people sharing the machine; the
ratios are this checkout over the baseline. `--floor` also times a bare Streamlit page (a
title only) and the same page with one Plotly or one Vega-Lite chart: the framework's own
cost on this machine, below which no page of ours can load.

The first load of each page on each server is reported on its own (`first_s`): it pays for
imports and cold caches once per server. Target: median under 1.5 s each on this machine.

    python bench/page_load.py --home /tmp/h13home                 # lands the demo if empty
    python bench/page_load.py --home /tmp/h13home --baseline 55a6c18 --cold --floor
Figures: bench/results/page_load.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
TARGET_S = 1.5
PAGES = {  # page -> path and the heading it shows once drawn
    "overview": ("", "Overview"),
    "alerts": ("alerts", "Alerts"),
    "alert": ("alert?alert=3", "Alert"),
    "datasets": ("datasets", "Datasets"),
    "monitors": ("monitors", "Monitors"),
    "pipeline": ("pipeline", "Pipeline"),
    "model_outputs": ("model-outputs", "Model outputs"),
}
# drawn and idle: Streamlit marks its root with the script state it shows (the running
# indicator only appears after a delay, so its absence alone ended some loads before the
# script had finished); a lazily loaded element is a skeleton until its code has loaded
IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
         && !document.querySelector('[data-testid="stSkeleton"]');
}"""
PHASES = ("dom_s", "websocket_s", "first_element_s", "script_finished_s", "idle_s")
FLOOR_APP = '''import streamlit as st
st.title("Floor")
kind = st.query_params.get("chart", "")
if kind == "plotly":
    import plotly.graph_objects as go
    st.plotly_chart(go.Figure(go.Bar(x=list(range(120)), y=list(range(120)))))
elif kind == "vega":
    st.vega_lite_chart({"values": [{"x": i, "y": i} for i in range(120)]},
                       {"mark": "bar", "encoding": {"x": {"field": "x", "type": "quantitative"},
                                                    "y": {"field": "y", "type": "quantitative"}}})
'''
FLOOR_PAGES = {"bare": ("?chart=none", "Floor"), "one_plotly_chart": ("?chart=plotly", "Floor"),
               "one_vega_chart": ("?chart=vega", "Floor")}


def demo_home(home: Path) -> Path:
    if not (home / "monitors.db").exists():
        print(f"landing the demo in {home} (a few minutes)...", flush=True)
        subprocess.run([sys.executable, "-m", "monitors", "demo"], cwd=ROOT, check=True,
                       env={**os.environ, "MONITORS_HOME": str(home)})
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], cwd: Path, env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{command} did not start within 120 s")


def start_dashboard(checkout: Path, home: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard as a person starts it (`monitors serve`, which execs streamlit)."""
    port = _free_port()
    return start([sys.executable, "-m", "monitors", "serve", "--port", str(port)], checkout,
                 {"MONITORS_HOME": str(home)}, port)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """One server and the browser context(s) that load its pages."""

    def __init__(self, name: str, process: subprocess.Popen, url: str, browser, cold: bool):
        self.name, self.process, self.url, self.browser, self.cold = name, process, url, browser, cold
        self.context = None if cold else browser.new_context(viewport={"width": 1400, "height": 900})

    def load(self, path: str, heading: str) -> dict[str, float]:
        """One load in a new tab (or a new profile when cold): seconds from navigation to each
        phase, and the server's CPU seconds spent meanwhile."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        context = self.context or self.browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        marks: dict[str, float] = {}

        def on_frame(payload) -> None:
            if isinstance(payload, str):
                return
            message = ForwardMsg()
            message.ParseFromString(payload)
            kind = message.WhichOneof("type")
            if kind == "delta":
                marks.setdefault("first_element_s", time.perf_counter() - started)
            elif kind == "script_finished":
                marks["script_finished_s"] = time.perf_counter() - started

        def on_websocket(websocket) -> None:
            marks.setdefault("websocket_s", time.perf_counter() - started)
            websocket.on("framereceived", on_frame)

        page.on("websocket", on_websocket)
        cpu = cpu_seconds(self.process.pid)
        try:
            started = time.perf_counter()
            page.goto(f"{self.url}/{path}", wait_until="commit")
            page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)
            page.wait_for_function(IDLE, polling=20, timeout=60_000)
            marks["idle_s"] = time.perf_counter() - started
            marks["dom_s"] = page.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd") / 1000
        finally:
            page.close()
            if self.cold:
                context.close()
        marks["server_cpu_s"] = cpu_seconds(self.process.pid) - cpu
        return marks


def median_of(loads: list[dict[str, float]], key: str) -> float | None:
    values = [load[key] for load in loads if key in load]
    return round(statistics.median(values), 3) if values else None


def summary(first: dict[str, float], loads: list[dict[str, float]]) -> dict:
    idle = [load["idle_s"] for load in loads]
    return {"first_s": round(first["idle_s"], 3), "median_s": median_of(loads, "idle_s"),
            "max_s": round(max(idle), 3), "under_target": statistics.median(idle) < TARGET_S,
            "phases_median_s": {phase: median_of(loads, phase) for phase in PHASES},
            "server_cpu_median_s": median_of(loads, "server_cpu_s")}


def interleaved(targets: list[Target], pages: dict[str, tuple[str, str]], repeat: int) -> dict:
    """page -> target -> summary; each round loads the page on every target, the order
    rotated each round."""
    results: dict[str, dict] = {}
    for name, (path, heading) in pages.items():
        first = {t.name: t.load(path, heading) for t in targets}
        loads: dict[str, list] = {t.name: [] for t in targets}
        for round_ in range(repeat):
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                loads[target.name].append(target.load(path, heading))
        results[name] = {t.name: summary(first[t.name], loads[t.name]) for t in targets}
        print(f"{name:<16}" + "   ".join(
            f"{t}: first {s['first_s']:5.2f} median {s['median_s']:5.2f} s "
            f"(script done {s['phases_median_s']['script_finished_s']}, server cpu "
            f"{s['server_cpu_median_s']})" for t, s in results[name].items()), flush=True)
    return results


def baseline_checkout(revision: str, into: Path) -> Path:
    """The files of `revision` (no git metadata: nothing of the repository changes)."""
    into.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def ratios(results: dict, ours: str, theirs: str) -> dict:
    return {page: round(by[ours]["median_s"] / by[theirs]["median_s"], 3)
            for page, by in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/monitors_bench_page_load"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", help="a git revision to compare with")
    parser.add_argument("--cold", action="store_true",
                        help="also time loads in a fresh browser profile each")
    parser.add_argument("--floor", action="store_true",
                        help="also time a bare Streamlit page, with one Plotly / Vega-Lite chart")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated subset")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = demo_home(args.home)
    pages = {name: PAGES[name] for name in args.pages.split(",")}
    document: dict = {"what": "browser page load on the 120-day demo, each load a new session; "
                              "ends when the page is drawn and Streamlit is idle",
                      "repeat": args.repeat, "target_s": TARGET_S,
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_avg_start": os.getloadavg()}}
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="page_load_") as scratch:
        try:
            servers = {"this": start_dashboard(ROOT, home)}
            processes.append(servers["this"][0])
            if args.baseline:
                revision = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT,
                                          check=True, capture_output=True, text=True).stdout.strip()
                document["baseline"] = revision
                old = baseline_checkout(args.baseline, Path(scratch) / "baseline")
                servers["baseline"] = start_dashboard(old, home)
                processes.append(servers["baseline"][0])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=LAUNCH_ARGS)
                for mode in ("tab", "cold") if args.cold else ("tab",):
                    print(f"-- {mode}: a new {'tab of a used browser' if mode == 'tab' else 'browser profile'} "
                          "per load", flush=True)
                    targets = [Target(name, process, url, browser, cold=mode == "cold")
                               for name, (process, url) in servers.items()]
                    document[mode] = {"pages": interleaved(targets, pages, args.repeat)}
                    if args.baseline:
                        document[mode]["ratio_this_over_baseline"] = ratios(
                            document[mode]["pages"], "this", "baseline")
                        print("ratios this/baseline:", document[mode]["ratio_this_over_baseline"])
                if args.floor:
                    app = Path(scratch) / "floor.py"
                    app.write_text(FLOOR_APP)
                    port = _free_port()
                    floor = start([sys.executable, "-m", "streamlit", "run", str(app),
                                   f"--server.port={port}", "--server.headless=true",
                                   "--server.fileWatcherType=none",
                                   "--browser.gatherUsageStats=false"], Path(scratch), {}, port)
                    processes.append(floor[0])
                    print("-- floor: a bare Streamlit page, then with one chart (new tab)")
                    document["floor"] = interleaved([Target("tab", *floor, browser, cold=False)],
                                                    FLOOR_PAGES, args.repeat)
                browser.close()
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
    document["machine"]["load_avg_end"] = os.getloadavg()
    out = ROOT / "bench" / "results" / "page_load.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
