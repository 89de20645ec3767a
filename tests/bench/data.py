"""Benchmark inputs: a 300-slice 512² CT on disk, and a 10,000-study index."""
from __future__ import annotations

import random
from datetime import datetime, timezone
import tempfile
from pathlib import Path

import sqlalchemy as sa
from pydicom.uid import generate_uid

CACHE = Path(tempfile.gettempdir()) / "pacs-bench-data"


def ct_folder(n_slices: int = 300, seed: int = 7) -> Path:
    """Write (once) a synthetic chest CT as Part 10 files; return the folder."""
    from app.demo.synthetic import StudySpec, chest_ct, write_datasets

    folder = CACHE / f"ct{n_slices}-{seed}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_datasets(chest_ct(StudySpec(seed=seed), n_slices=n_slices), folder)
        (folder / ".complete").touch()
    return folder


def populate_studies(engine: sa.Engine, tenant_code: str, count: int = 10_000) -> list[str]:
    """Insert ``count`` patients/studies/series/instances straight into the index.

    Returns the patient IDs. Index rows only (no files): query benchmarks
    measure matching and response building, not storage.
    """
    meta = sa.MetaData()
    meta.reflect(engine, only=["tenant", "patient", "study", "series", "instance"])
    t = meta.tables
    rng = random.Random(1)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    family = ["Zhang^San=张^三", "Li^Si=李^四", "Wang^Wu=王^五", "Zhao^Liu=赵^六", "Chen^Qi=陈^七"]
    with engine.begin() as conn:
        tenant_id = conn.execute(sa.select(t["tenant"].c.id)
                                 .where(t["tenant"].c.code == tenant_code)).scalar_one()
        pids = [f"B{i:06d}" for i in range(count)]
        conn.execute(t["patient"].insert(), [dict(
            tenant_id=tenant_id, patient_key=f"{pid}^", patient_id=pid, issuer="",
            name=family[i % 5] + str(i), name_search=family[i % 5].lower(), sex="MF"[i % 2],
            birth_date=f"19{50 + i % 50:02d}0101") for i, pid in enumerate(pids)])
        ids = dict(conn.execute(sa.select(t["patient"].c.patient_id, t["patient"].c.id)
                                .where(t["patient"].c.tenant_id == tenant_id)).all())
        conn.execute(t["study"].insert(), [dict(
            tenant_id=tenant_id, patient_pk=ids[pid], study_uid=generate_uid(),
            study_date=f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}", study_time="101010",
            accession_number=f"ACC{i:07d}", study_id=str(i), description="CT chest",
            referring_physician="", institution="", modalities=rng.choice(["CT", "MR", "CT\\PT"]),
            num_series=1, num_instances=1, size_bytes=1, flagged=False,
            created_at=now, updated_at=now) for i, pid in enumerate(pids)])
    return pids
