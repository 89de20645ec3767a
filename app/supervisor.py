"""Run every process of a single-machine install in the foreground until Ctrl-C.

gunicorn serves the web app, the DICOM node runs as its own process, and
when ``REDIS_URL`` is set, rq render workers start too. If one process dies,
everything is stopped so the operator sees it at once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app import config

BIN = Path(sys.executable).parent
RENDER_QUEUES = ["render"]
# Path only, never the query string: search URLs carry patient names, and
# patient data never goes into logs.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'



def _commands(settings: dict) -> list[tuple[str, list[str]]]:
    workers = os.environ.get("PACS_WEB_WORKERS", str(max(2, (os.cpu_count() or 1))))
    commands = [
        ("web", [str(BIN / "gunicorn"), "--workers", workers, "--threads", "8",
                 "--bind", f"0.0.0.0:{settings['PACS_HTTP_PORT']}", "--timeout", "300",
                 "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "wsgi:app"]),
        ("dicom", [str(BIN / "flask"), "--app", "wsgi", "pacs", "dicom-node"]),
    ]
    if settings["REDIS_URL"]:
        count = int(os.environ.get("PACS_RENDER_WORKERS", "2"))
        for i in range(count):
            commands.append((f"render{i + 1}", [str(BIN / "rq"), "worker", "--url",
                                                settings["REDIS_URL"], *RENDER_QUEUES]))
    return commands


def run() -> None:
    """Start all processes, print where to find them, wait, and stop them together."""
    settings = config.from_environment()
    procs: list[tuple[str, subprocess.Popen]] = []
    for name, cmd in _commands(settings):
        procs.append((name, subprocess.Popen(cmd, start_new_session=True)))
    print(f"\n  Web:   http://localhost:{settings['PACS_HTTP_PORT']}/"
          f"\n  DICOM: AE title DEMO, port {settings['PACS_DICOM_PORT']}"
          f"\n  Data:  {settings['PACS_DATA_DIR']}"
          f"\n  Press Ctrl-C to stop.\n", flush=True)
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        dead = [(n, p) for n, p in procs if p.poll() is not None]
        if dead:
            print(f"process {dead[0][0]} exited with {dead[0][1].returncode}; stopping", flush=True)
            break
        time.sleep(0.5)
    for _, proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _, proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print("stopped", flush=True)
