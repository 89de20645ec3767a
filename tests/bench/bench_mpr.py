"""MPR benchmark: load a 600-slice 512² CT into a volume, then time warm 3-D frames.

Part of ``make bench`` (``python -m tests.bench mpr``). The series is the
project's synthetic chest CT (:func:`tests.bench.data.ct_folder`, 600
uncompressed 512² slices of 1.25 mm, written once into the temp dir).
Frames go through the operations the web app calls (:func:`mpr_frame`,
:func:`cpr_frame`) with the volume warm in the cache: query parsing,
sampling, window, viewport, JPEG q90 at 512×512. Figures are medians (p50)
and p90 over repeated calls; the dev machine has 2 cores shared with other
work, so expect noise.
"""
from __future__ import annotations

import statistics
import time

from render_farm.cache import ByteLRUCache
from render_farm.cpr import cpr_frame
from render_farm.mpr import mpr_frame
from render_farm.volume import load_volume, read_volume
from tests.bench.data import ct_folder

SLICES = 600
VIEW = "w=512&h=512&wc=40&ww=400"
FRAMES = {
    "ortho_axial": "o=axial&cx=10&cy=5&cz=-370",
    "ortho_coronal": "o=coronal&cx=10&cy=5&cz=-370",
    "ortho_sagittal": "o=sagittal&cx=10&cy=5&cz=-370",
    "oblique_axial_rx20_rz15": "o=axial&cx=10&cy=5&cz=-370&rx=20&rz=15",
    "oblique_coronal_rx20_rz15": "o=coronal&cx=10&cy=5&cz=-370&rx=20&rz=15",
    "slab_mip_20mm_axial": "o=axial&cx=10&cy=5&cz=-370&st=20&sp=mip",
    "slab_mip_20mm_coronal": "o=coronal&cx=10&cy=5&cz=-370&st=20&sp=mip",
    "slab_mip_20mm_oblique": "o=axial&cx=10&cy=5&cz=-370&rx=20&rz=15&st=20&sp=mip",
}
#: A curved path of about 250 mm through the chest (an aorta-like arc).
CPR_PATH = "path=0,40,-200;30,20,-260;40,0,-330;30,-10,-400;10,0,-440"


def _time(call, repeats: int) -> dict[str, float]:
    call()                                     # warm: caches, LUTs, VTK
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return {"p50_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))]}


def run(repeats: int = 30) -> dict[str, object]:
    folder = ct_folder(SLICES)
    paths = sorted(str(p) for p in folder.glob("*.dcm"))
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        volume = read_volume(paths, key="bench")
        loads.append(time.perf_counter() - start)
        del volume
    results: dict[str, object] = {
        "slices": len(paths),
        "load_s": {"first": loads[0], "best": min(loads)},
    }
    cache = ByteLRUCache(2 * 1024**3)
    volume = load_volume(cache, "bench", paths)
    results["volume"] = {"shape": "x".join(map(str, volume.shape)),
                         "MiB": volume.nbytes / 2**20}
    frames: dict[str, object] = {}
    for name, query in FRAMES.items():
        frames[name] = _time(lambda q=f"{query}&{VIEW}": mpr_frame(cache, "bench", paths, q),
                             repeats)
        frames[name]["KiB"] = len(mpr_frame(cache, "bench", paths, f"{query}&{VIEW}")[0]) / 1024
    for kind, extra in (("cpr_straightened", "cw=80"), ("cpr_stretched", "kind=stretched&cw=80"),
                        ("cpr_cross_section", "kind=cross&pos=120&cw=60")):
        query = f"{CPR_PATH}&{extra}&{VIEW}"
        frames[kind] = _time(lambda q=query: cpr_frame(cache, "bench", paths, q), repeats)
    results["frames"] = frames
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
