"""Run every process of a single-machine install in the foreground until Ctrl-C.

gunicorn serves the web app, the DICOM node runs as its own process, and
when ``REDIS_URL`` is set, render workers start too (``python -m
render_farm.worker``: rq SimpleWorkers with a warm cache, each serving its own
affinity queue and the shared one). If one process dies, everything is
stopped so the operator sees it at once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app import config
from render_farm import routing

BIN = Path(sys.executable).parent
RENDER_QUEUES = [routing.SHARED_QUEUE]  # plus one private queue per worker
# Path only, never the query string: search URLs carry patient names, and
# patient data never goes into logs.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


Command = tuple[str, list[str], dict[str, str]]  # name, argv, extra environment


def _node_commands(count: int) -> list[Command]:
    """``count`` DICOM node processes sharing one port (SO_REUSEPORT when > 1)."""
    argv = [str(BIN / "flask"), "--app", "wsgi", "pacs", "dicom-node", "--processes", "1"]
    env = {"PACS_DICOM_REUSE_PORT": "1"} if count > 1 else {}
    return [(f"dicom{i + 1}", argv, env) for i in range(count)]


def _commands(settings: dict) -> list[Command]:
    workers = os.environ.get("PACS_WEB_WORKERS", str(max(2, (os.cpu_count() or 1))))
    nodes = int(os.environ.get("PACS_DICOM_PROCESSES", str(os.cpu_count() or 1)))
    commands: list[Command] = [
        ("web", [str(BIN / "gunicorn"), "--workers", workers, "--threads", "8",
                 "--bind", f"0.0.0.0:{settings['PACS_HTTP_PORT']}", "--timeout", "300",
                 "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "wsgi:app"], {}),
        *_node_commands(nodes),
    ]
    if settings["REDIS_URL"]:
        count = int(os.environ.get("PACS_RENDER_WORKERS", "2"))
        for i in range(count):
            commands.append((f"render{i + 1}", [sys.executable, "-m", "render_farm.worker",
                                                "--url", settings["REDIS_URL"],
                                                "--queue", RENDER_QUEUES[0]], {}))
    return commands


def run() -> None:
    """Start all processes, print where to find them, wait, and stop them together."""
    settings = config.from_environment()
    banner = (f"\n  Web:   http://localhost:{settings['PACS_HTTP_PORT']}/"
              f"\n  DICOM: AE title DEMO, port {settings['PACS_DICOM_PORT']}"
              f"\n  Data:  {settings['PACS_DATA_DIR']}"
              f"\n  Press Ctrl-C to stop.\n")
    supervise(_commands(settings), banner)


def run_node_processes(count: int) -> None:
    """``flask pacs dicom-node --processes N``: N node processes on one port."""
    supervise(_node_commands(count), f"DICOM node: {count} processes")


def supervise(commands: list[Command], banner: str) -> None:
    """Run ``commands`` until Ctrl-C/SIGTERM or until one exits; then stop them all."""
    procs = [(name, subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True))
             for name, argv, env in commands]
    print(banner, flush=True)
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
