"""The viewer in headless Chromium over emulated narrow links.

``python -m tests.bench browser``. A 2,000-slice 512² CT from the demo generator
is ingested once into a PACS data directory under the benchmark cache (a rerun
reuses it), served by gunicorn and opened in Debian's Chromium through
Playwright, with DevTools network emulation (``Network.emulateNetworkConditions``
over a CDP session: added latency per request and a bandwidth cap in each
direction; this kernel has no netem).

- **Time to first image**, 2 Mbit/s and 100 ms: cold render cache (a new
  server process per run) and a cold browser cache (a new context); from
  navigation start to the viewport image's first paint, read from the Element
  Timing API (``elementtiming`` on the viewport ``<img>``). Median of 3 runs.
  Also when the page is interactive: the script holds the 2,000-image stack.
- **Frames shown while scrolling**, 10 Mbit/s and 50 ms: the wheel turns
  steadily at 30 notches/s for 6 s over unseen slices; every new image put
  on screen (a change of the viewport image's ``src``, which the viewer makes
  only once the image has loaded) is counted.

The figures also give the bytes that crossed the link before the first image
and the mean frame size while scrolling.
"""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pydicom

from tests.bench.data import CACHE, ct_folder
from tests.bench.stack import BIN, ROOT, free_port, wait_port
from tests.live import chromium

N_SLICES = 2000
TENANT, USER, PASSWORD = "BENCH", "bench", "bench-password"
FIRST_IMAGE_LINK = (2_000_000, 100)   # bits/s, round trip ms
SCROLL_LINK = (10_000_000, 50)
SCROLL_RATE, SCROLL_SECONDS = 30, 6.0
RUNS = 3

# Records the first paint of the viewport image (ms after navigation start), and every new image.
PROBE = """
window.__paints = [];
new PerformanceObserver(list => {
  for (const e of list.getEntries())
    if (e.identifier === 'viewport' && window.__firstPaint === undefined) window.__firstPaint = e.renderTime || e.loadTime;
}).observe({type: 'element', buffered: true});
"""
COUNT_SHOWN = """() => {
  const img = document.querySelector('.vp.active .vp-img');
  window.__shown = [];
  new MutationObserver(() => window.__shown.push([performance.now(), img.getAttribute('src')]))
    .observe(img, {attributes: true, attributeFilter: ['src']});
}"""


def archive(n_slices: int = N_SLICES, name: str = "browser") -> tuple[Path, str]:
    """(PACS data dir, Study Instance UID): the CT ingested once, kept in the cache."""
    folder = ct_folder(n_slices)
    files = sorted(str(p) for p in folder.glob("*.dcm"))
    data_dir = CACHE / f"{name}-pacs-ct{n_slices}"
    if not (data_dir / ".complete").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        for args in (("db", "upgrade"),
                     ("pacs", "create-tenant", "--code", TENANT, "--name", "Bench", "--ae", TENANT),
                     ("pacs", "create-user", "--tenant", TENANT, "--username", USER,
                      "--password", PASSWORD, "--role", "radiologist"),
                     ("pacs", "import", *files, "--tenant", TENANT)):
            subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=_env(data_dir),
                           check=True, capture_output=True)
        (data_dir / ".complete").touch()
    return data_dir, str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def _env(data_dir: Path) -> dict:
    env = dict(os.environ, PACS_DATA_DIR=str(data_dir))
    for key in ("REDIS_URL", "DATABASE_URL", "STORAGE_URL"):
        env.pop(key, None)
    return env


@contextmanager
def server(data_dir: Path) -> Iterator[str]:
    """gunicorn on the data dir: a new process, so its render cache is cold."""
    port = free_port()
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--workers", "2", "--threads", "4", "--bind",
                             f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
                            cwd=ROOT, env=_env(data_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def throttle(page, bits_per_s: int, rtt_ms: int) -> None:
    """Chromium's DevTools network emulation on this page."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": rtt_ms,
        "downloadThroughput": bits_per_s / 8, "uploadThroughput": bits_per_s / 8})


def _logged_in(browser, base: str):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def _bytes(page) -> dict:
    """Bytes over the link by kind, from Resource Timing (plus the page itself)."""
    entries = page.evaluate("""() => performance.getEntriesByType('resource').map(e =>
        [e.name, e.transferSize, e.responseEnd]).concat(performance.getEntriesByType('navigation')
        .map(e => ['page', e.transferSize, e.responseEnd]))""")
    first = page.evaluate("window.__firstPaint")
    kinds: dict[str, int] = {}
    for name, size, end in entries:
        if end > first:
            continue
        kind = ("page" if name == "page" else "frames" if "/frames/" in name else
                "stack" if "/series/" in name else "static" if "/static/" in name else "other")
        kinds[kind] = kinds.get(kind, 0) + size
    return kinds


def first_image(data_dir: Path, study: str) -> dict:
    bits, rtt = FIRST_IMAGE_LINK
    times, ready, weights = [], [], []
    for _ in range(RUNS):
        with server(data_dir) as base, chromium() as browser:
            page = _logged_in(browser, base)
            page.add_init_script(PROBE)
            throttle(page, bits, rtt)
            page.goto(f"{base}/viewer/{study}", wait_until="commit")
            page.wait_for_function("window.__firstPaint !== undefined", timeout=60_000)
            times.append(page.evaluate("window.__firstPaint"))
            # Interactive: the script has the stack (every image's geometry) and can scroll.
            page.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.stack",
                                   timeout=60_000, polling=20)
            ready.append(page.evaluate("performance.now()"))
            page.wait_for_load_state("load")
            weights.append(_bytes(page))
            page.context.close()
    return {"link": f"{bits / 1e6:g} Mbit/s, {rtt} ms", "median_ms": statistics.median(times),
            "runs_ms": [round(t) for t in times], "target_ms": 1500,
            "interactive_median_ms": statistics.median(ready),
            "bytes_before_first_image": weights[-1]}


def scrolling(data_dir: Path, study: str) -> dict:
    bits, rtt = SCROLL_LINK
    with server(data_dir) as base, chromium() as browser:
        page = _logged_in(browser, base)
        throttle(page, bits, rtt)
        page.goto(f"{base}/viewer/{study}")
        page.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.stack"
                               " && pacsViewer.active.shown && !pacsViewer.active.shown.interactive",
                               timeout=60_000)
        time.sleep(1.0)  # prefetching of the neighbours settles
        page.evaluate(COUNT_SHOWN)
        box = page.locator(".vp.active").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        start = time.monotonic()
        notches = 0
        while (elapsed := time.monotonic() - start) < SCROLL_SECONDS:
            if notches < elapsed * SCROLL_RATE:
                page.mouse.wheel(0, 100)
                notches += 1
            else:
                time.sleep(0.002)
        shown = page.evaluate("window.__shown")
        index = page.evaluate("pacsViewer.active.index")
        sizes = page.evaluate("""() => performance.getEntriesByType('resource')
            .filter(e => e.name.includes('/frames/') && e.name.includes('q=60')).map(e => e.transferSize)""")
        page.context.close()
    window = [t for t, _ in shown if t - shown[0][0] <= SCROLL_SECONDS * 1000] if shown else []
    span = (window[-1] - window[0]) / 1000 if len(window) > 1 else SCROLL_SECONDS
    return {"link": f"{bits / 1e6:g} Mbit/s, {rtt} ms", "wheel_notches": notches,
            "images_scrolled": index, "images_shown": len(shown),
            "frames_per_s_shown": len(window) / max(span, 1e-3), "target_fps": 15,
            "mean_frame_bytes": round(statistics.mean(sizes)) if sizes else 0}


def run() -> dict:
    data_dir, study = archive()
    return {"first_image": first_image(data_dir, study), "scrolling": scrolling(data_dir, study)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
