"""The first MPR images in headless Chromium over an emulated 2 Mbit/s, 100 ms link.

``python -m tests.bench mpr_browser``. A 600-slice 512² CT from the demo
generator is ingested once into a PACS data directory under the benchmark
cache, served by gunicorn (a new process per run: the volume is not cached
yet) and opened in Debian's Chromium at
``/viewer/<study>?series=<series>&view=mpr`` (the HIS deep link, which
redirects). The time is from navigation start to the first paint of each
plane's image (Element Timing); the server has to read the 600 files into a
volume before the first plane exists. Median of 3 runs.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import pydicom

from tests.bench.bench_browser import _logged_in, server, throttle
from tests.bench.bench_browser import archive as browser_archive
from tests.bench.data import ct_folder
from tests.live import chromium

N_SLICES = 600
LINK = (2_000_000, 100)  # bits/s, round trip ms
RUNS = 3
PLANES = ("axial", "coronal", "sagittal")
PROBE = """
window.__paints = {};
new PerformanceObserver(list => {
  for (const e of list.getEntries())
    if (e.identifier.startsWith('mpr-') && !(e.identifier in window.__paints))
      window.__paints[e.identifier] = e.renderTime || e.loadTime;
}).observe({type: 'element', buffered: true});
"""


def archive() -> tuple[Path, str, str]:
    """(PACS data dir, Study UID, Series UID): the CT ingested once, kept in the cache."""
    data_dir, study = browser_archive(N_SLICES, "mpr")
    first = next(iter(sorted(ct_folder(N_SLICES).glob("*.dcm"))))
    return data_dir, study, str(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID)


def run() -> dict:
    data_dir, study, series = archive()
    bits, rtt = LINK
    firsts, alls = [], []
    for _ in range(RUNS):
        with server(data_dir) as base, chromium() as browser:
            page = _logged_in(browser, base)
            page.add_init_script(PROBE)
            throttle(page, bits, rtt)
            page.goto(f"{base}/viewer/{study}?series={series}&view=mpr", wait_until="commit")
            page.wait_for_function("Object.keys(window.__paints).length >= 3", timeout=120_000)
            paints = page.evaluate("window.__paints")
            firsts.append(min(paints[f"mpr-{p}"] for p in PLANES))
            alls.append(max(paints[f"mpr-{p}"] for p in PLANES))
            page.context.close()
    return {"link": f"{bits / 1e6:g} Mbit/s, {rtt} ms", "slices": N_SLICES,
            "first_plane_ms": statistics.median(firsts), "all_three_ms": statistics.median(alls),
            "runs_first_ms": [round(t) for t in firsts], "target_ms": 2000}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
