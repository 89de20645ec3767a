"""DICOMweb over gunicorn: QIDO-RS latency at 10,000 studies, WADO-RS series throughput."""
from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

import pydicom
import requests

from tests.bench.data import ct_folder, populate_studies
from tests.bench.stack import AE, Stack


def qido_latency(database: str, studies: int = 10_000, queries: int = 300) -> dict:
    with Stack(database, web=True) as stack:
        pids = populate_studies(stack.engine(), "BENCH", studies)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {stack.token}"
        base = f"http://127.0.0.1:{stack.http_port}/dicom-web/studies"
        session.get(base, params={"limit": 1}).raise_for_status()  # warm both workers' pools
        times = []
        for i in range(queries):
            start = time.perf_counter()
            response = session.get(base, params={"PatientID": pids[i * 31 % len(pids)]})
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200 and len(response.json()) == 1
        times.sort()
        return {"median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95)]}


def wado_series(files: list[Path], repeats: int = 5) -> dict:
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    with Stack("sqlite", web=True) as stack:
        subprocess.run(["storescu", "-aec", AE, "127.0.0.1", str(stack.dicom_port),
                        *map(str, files)], check=True, capture_output=True)
        url = (f"http://127.0.0.1:{stack.http_port}/dicom-web/studies/{ds.StudyInstanceUID}"
               f"/series/{ds.SeriesInstanceUID}")
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {stack.token}",
                                "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            total = 0
            with session.get(url, stream=True) as response:
                response.raise_for_status()
                for chunk in response.iter_content(1 << 20):
                    total += len(chunk)
            rates.append(total / (time.perf_counter() - start) / 1e6)
        assert total >= sum(f.stat().st_size for f in files)
        return {"mb_per_s_median": statistics.median(rates), "bytes": total}


def run() -> dict:
    files = sorted(p for p in ct_folder().iterdir() if p.suffix == ".dcm")
    return {
        "qido_sqlite": qido_latency("sqlite"),
        "qido_postgresql": qido_latency("postgresql"),
        "wado_series": wado_series(files),
    }
