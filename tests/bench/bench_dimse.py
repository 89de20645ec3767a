"""DIMSE: C-STORE in (1 and 4 associations), C-MOVE and C-GET out, C-FIND latency.

Besides instances/s, each transfer reports the node's CPU time per instance
(all node processes, from ``/proc``) and the load average: on a shared
machine wall-clock rates move with other work, CPU per instance much less.
"""
from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from tests.bench.data import ct_folder, populate_studies
from tests.bench.stack import AE as CALLED_AE, Stack, free_port, wait_port


def _storescu(port: int, files: list[Path]) -> None:
    subprocess.run(["storescu", "-aec", CALLED_AE, "-aet", "BENCHSCU", "127.0.0.1", str(port),
                    *map(str, files)], check=True, capture_output=True)


def _count(stack: Stack) -> int:
    import sqlalchemy as sa

    engine = stack.engine()
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM instance")).scalar_one()
    engine.dispose()
    return n


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            pids += _process_tree(int(child))
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (threads included, also those that ended)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class NodeCpu:
    """Node CPU time and load average over a ``with`` block (Linux ``/proc``)."""

    def __init__(self, stack: Stack) -> None:
        self.pids = _process_tree(stack.procs[0].pid) if Path("/proc").exists() else []
        self.seconds = 0.0

    def __enter__(self) -> "NodeCpu":
        self.seconds = -_cpu_seconds(self.pids)
        return self

    def __exit__(self, *exc) -> None:
        self.seconds += _cpu_seconds(self.pids)
        self.load = os.getloadavg()[0]

    def figures(self, instances: int, elapsed: float) -> dict:
        return {"instances_per_s": instances / elapsed, "seconds": elapsed,
                "node_cpu_ms_per_instance": 1000 * self.seconds / instances,
                "load_average_1min": self.load}


def store(database: str, associations: int, files: list[Path]) -> dict:
    """Instances/s, MB/s and node CPU per instance of C-STORE into a fresh archive."""
    size = sum(f.stat().st_size for f in files)
    with Stack(database) as stack:
        chunks = [files[i::associations] for i in range(associations)]
        with NodeCpu(stack) as cpu:
            start = time.perf_counter()
            with ThreadPoolExecutor(associations) as pool:
                list(pool.map(lambda c: _storescu(stack.dicom_port, c), chunks))
            elapsed = time.perf_counter() - start
        stored = _count(stack)
    assert stored == len(files), f"stored {stored} of {len(files)}"
    return {**cpu.figures(len(files), elapsed), "mb_per_s": size / elapsed / 1e6}


def retrieve(files: list[Path]) -> dict:
    """C-MOVE into a dcmtk storescp and C-GET with getscu, instances/s."""
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    keys = ["-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
            "-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}"]
    results = {}
    with Stack("sqlite") as stack:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda c: _storescu(stack.dicom_port, c), [files[i::4] for i in range(4)]))
        out = Path(tempfile.mkdtemp())
        dest_port = free_port()
        scp = subprocess.Popen(["storescp", "-aet", "DEST", "-od", str(out), "--sort-on-study-uid",
                                "st", str(dest_port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            wait_port(dest_port)
            stack.add_peer("DEST", dest_port)
            with NodeCpu(stack) as cpu:
                start = time.perf_counter()
                subprocess.run(["movescu", "-aec", CALLED_AE, "-aem", "DEST", "-S", *keys,
                                "127.0.0.1", str(stack.dicom_port)], check=True,
                               capture_output=True)
                elapsed = time.perf_counter() - start
            results["cmove"] = cpu.figures(len(files), elapsed)
            results["cmove_instances_per_s"] = len(files) / elapsed
            moved = sum(1 for p in out.rglob("*") if p.is_file())
            assert moved == len(files), f"moved {moved}"
        finally:
            scp.terminate()
            scp.wait()
        get_dir = Path(tempfile.mkdtemp())
        with NodeCpu(stack) as cpu:
            start = time.perf_counter()
            subprocess.run(["getscu", "-aec", CALLED_AE, "-S", *keys, "-od", str(get_dir),
                            "127.0.0.1", str(stack.dicom_port)], check=True, capture_output=True)
            elapsed = time.perf_counter() - start
        results["cget"] = cpu.figures(len(files), elapsed)
        results["cget_instances_per_s"] = len(files) / elapsed
        got = sum(1 for p in get_dir.rglob("*") if p.is_file())
        assert got == len(files), f"got {got}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(get_dir, ignore_errors=True)
    return results


def _nodelay(event) -> None:
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def find_latency(database: str, studies: int = 10_000, queries: int = 300) -> dict:
    """Median/p95 ms of study-level C-FIND on one open association, N studies indexed."""
    with Stack(database) as stack:
        pids = populate_studies(stack.engine(), "BENCH", studies)
        ae = AE(ae_title="BENCHSCU")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", stack.dicom_port, ae_title=CALLED_AE,
                             evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)])
        assert assoc.is_established
        figures = {}
        for label, make in [("by_patient_id", lambda i: {"PatientID": pids[i * 31 % len(pids)]}),
                            # Patient 5k is "Zhang^San=张^三<5k>": a few names share the prefix.
                            ("by_name_prefix", lambda i: {
                                "SpecificCharacterSet": "ISO_IR 192",
                                "PatientName": f"张^三{(i * 35) % len(pids)}*"})]:
            times = []
            for i in range(queries):
                ident = pydicom.Dataset()
                ident.QueryRetrieveLevel = "STUDY"
                for k in ("StudyInstanceUID", "StudyDate", "AccessionNumber", "PatientName",
                          "PatientID", "ModalitiesInStudy", "StudyDescription"):
                    setattr(ident, k, "")
                for k, v in make(i).items():
                    setattr(ident, k, v)
                start = time.perf_counter()
                found = sum(1 for status, _ in assoc.send_c_find(
                    ident, StudyRootQueryRetrieveInformationModelFind) if status and status.Status in (0xFF00, 0xFF01))
                times.append((time.perf_counter() - start) * 1000)
                assert found >= 1
            times.sort()
            figures[label] = {"median_ms": statistics.median(times),
                              "p95_ms": times[int(len(times) * 0.95)]}
        assoc.release()
    return figures


def run() -> dict:
    files = sorted(p for p in ct_folder().iterdir() if p.suffix == ".dcm")
    return {
        "files": len(files), "mib_per_file": files[0].stat().st_size / 2**20,
        "cstore_1_assoc": store("sqlite", 1, files),
        "cstore_4_assoc": store("sqlite", 4, files),
        "cstore_1_assoc_pg": store("postgresql", 1, files),
        "cstore_4_assoc_pg": store("postgresql", 4, files),
        "retrieve": retrieve(files),
        "cfind_sqlite": find_latency("sqlite"),
        "cfind_postgresql": find_latency("postgresql"),
    }
