"""Open a 3D page (:mod:`pseudolidar.html_view`) in headless Chromium: screenshot, load time, and
the network requests the page made.

Used by the browser tests and to measure a page (size, time until the plot is drawn)::

    python -m pseudolidar.html_browser PAGE.html [--runs 3] [--screenshot shot.png] [--camera driver]

Chromium runs with its network cut off (a proxy on a closed local port, every host name
unresolvable, background services off) and writes a NetLog; :func:`page_requests` lists the
requests in it that the page (a ``file://`` document) started, so "the page loads nothing from the
network" is checked on what the browser did, not on the page's text. Chromium's own
background requests (component updates and the like) are told apart by their network isolation
key, which for a page's requests names the page's ``file://`` site.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Executables tried in order (Debian's package installs ``chromium``); env FORESEE_CHROMIUM first.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: A local port nothing listens on: every proxied request fails at once.
_CLOSED_PROXY = "http://127.0.0.1:9"


def chromium_binary() -> str | None:
    """Path of a Chromium executable, or None when none is installed."""
    env = os.environ.get("FORESEE_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class BrowserRun:
    """What one headless run gave.

    Attributes:
        dom: the page's DOM after the run (``--dump-dom``), "" when a screenshot was asked for.
        requests: URLs the page asked the network for (see :func:`page_requests`).
        wall_s: wall-clock seconds of the whole browser process.
        cpu_s: user + system CPU seconds of the browser's whole process tree (renderer, GPU
            process...), from ``/proc`` sampled every 50 ms (a process's last sample counts, so a
            process living under 50 ms may be missed; 0 without ``/proc`` or unless asked).
        ready_ms: the page's ``data-ready-ms`` (ms from navigation start until plotly drew the
            figure), None when absent.
    """

    dom: str
    requests: tuple[str, ...]
    wall_s: float
    cpu_s: float
    ready_ms: float | None


def process_tree_cpu_ticks(root_pid: int) -> dict[int, int]:
    """pid -> utime + stime (clock ticks) of ``root_pid`` and all its descendants, from /proc."""
    parent, ticks = {}, {}
    try:
        entries = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return {}
    for d in entries:
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(d)], ticks[int(d)] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, grew = {root_pid}, True
    while grew:
        new = {pid for pid, pp in parent.items() if pp in tree and pid not in tree}
        tree |= new
        grew = bool(new)
    return {pid: ticks[pid] for pid in tree if pid in ticks}


def page_requests(netlog: dict) -> list[str]:
    """URLs of the requests that a ``file://`` page started, from a Chromium NetLog (JSON)."""
    names = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
    urls = []
    for event in netlog.get("events", []):
        params = event.get("params") or {}
        if names.get(event.get("type")) == "URL_REQUEST_START_JOB" and "url" in params:
            if "file://" in str(params.get("network_isolation_key", "")) or params.get("initiator") == "null":
                urls.append(params["url"])
    return urls


def run_headless(url: str, *, screenshot: Path | None = None, window_wh: tuple[int, int] = (1200, 800),
                 budget_ms: int = 2_000, timeout_s: float = 300.0, binary: str | None = None,
                 measure_cpu: bool = False) -> BrowserRun:
    """Open ``url`` in headless Chromium with the network cut off.

    Args:
        url: a ``file://`` URL (a fragment such as ``#driver`` picks the page's camera).
        screenshot: write a PNG of the window there (else the DOM is dumped).
        window_wh: window size in pixels.
        budget_ms: virtual time given to the page (timers, animation frames) before the capture.
        timeout_s: wall-clock limit of the browser process.
        binary: the executable (default :func:`chromium_binary`).
        measure_cpu: sample the process tree's CPU time (``BrowserRun.cpu_s``; else 0).

    Raises:
        RuntimeError: no Chromium, or the browser failed (its last stderr lines in the message).
    """
    exe = binary or chromium_binary()
    if exe is None:
        raise RuntimeError("no Chromium found (install Debian's `chromium` package or set FORESEE_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="foresee_chromium_") as tmp:
        netlog_path = Path(tmp) / "netlog.json"
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                "--use-angle=swiftshader", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={tmp}/profile", f"--proxy-server={_CLOSED_PROXY}",
                "--host-resolver-rules=MAP * ~NOTFOUND", f"--log-net-log={netlog_path}",
                f"--window-size={window_wh[0]},{window_wh[1]}", f"--virtual-time-budget={budget_ms}"]
        args += [f"--screenshot={screenshot}"] if screenshot is not None else ["--dump-dom"]
        t0 = time.perf_counter()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen([*args, url], stdout=out, stderr=err, text=True)
            ticks: dict[int, int] = {}
            try:
                while proc.poll() is None:
                    if time.perf_counter() - t0 > timeout_s:
                        raise RuntimeError(f"chromium took over {timeout_s:.0f} s on {url}")
                    if measure_cpu:
                        for pid, t in process_tree_cpu_ticks(proc.pid).items():
                            ticks[pid] = max(ticks.get(pid, 0), t)
                    time.sleep(0.05)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            wall = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
        if proc.returncode != 0 or (screenshot is not None and not Path(screenshot).is_file()):
            tail = "\n".join(stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"chromium exited {proc.returncode} on {url}: {tail}")
        requests = tuple(page_requests(json.loads(netlog_path.read_text()))) if netlog_path.is_file() else ()
    dom = stdout if screenshot is None else ""
    m = re.search(r'data-ready-ms="([0-9.]+)"', dom)
    return BrowserRun(dom, requests, wall, cpu, float(m.group(1)) if m else None)


def measure(page: Path, runs: int = 3, camera: str = "") -> dict:
    """Size of ``page`` and, over ``runs`` headless openings, the page's time until the plot is
    drawn (``data-ready-ms``) and the browser's wall time (median, min, max)."""
    url = page.resolve().as_uri() + (f"#{camera}" if camera else "")
    results = [run_headless(url, measure_cpu=True) for _ in range(runs)]
    ready = [r.ready_ms for r in results if r.ready_ms is not None]
    walls = [r.wall_s for r in results]
    cpus = [r.cpu_s for r in results]
    out = {"page": str(page), "bytes": page.stat().st_size, "runs": runs,
           "ready_ms": {"median": statistics.median(ready), "min": min(ready), "max": max(ready)} if ready else None,
           "browser_wall_s": {"median": statistics.median(walls), "min": min(walls), "max": max(walls)},
           "browser_cpu_s": {"median": statistics.median(cpus), "min": min(cpus), "max": max(cpus)},
           "requests": sorted({u for r in results for u in r.requests})}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pseudolidar.html_browser", description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--camera", default="", help="camera preset to open on (bev, driver, chase)")
    ap.add_argument("--screenshot", type=Path, default=None, help="also write a screenshot (1200x800)")
    a = ap.parse_args(argv)
    if not a.page.is_file():
        print(f"error: {a.page}: no such file")
        return 2
    if chromium_binary() is None:
        print("error: no Chromium found (install Debian's `chromium` package or set FORESEE_CHROMIUM)")
        return 2
    res = measure(a.page, a.runs, a.camera)
    ready = res["ready_ms"]
    print(f"{a.page}: {res['bytes'] / 1e6:.2f} MB; plot drawn {ready['median']:.0f} ms after navigation "
          f"start (median of {a.runs}, {ready['min']:.0f}-{ready['max']:.0f}); browser process "
          f"{res['browser_wall_s']['median']:.2f} s wall, {res['browser_cpu_s']['median']:.2f} s CPU "
          f"(start to exit); network requests by the page: {len(res['requests'])}; "
          f"load average {os.getloadavg()[0]:.1f}"
          if ready else f"{a.page}: plot never reported ready; requests {res['requests']}")
    if a.screenshot is not None:
        url = a.page.resolve().as_uri() + (f"#{a.camera}" if a.camera else "")
        run_headless(url, screenshot=a.screenshot.resolve())
        print(f"wrote {a.screenshot}")
    return 0 if ready and not res["requests"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
