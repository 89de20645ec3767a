"""Volume rendering benchmark: a 512×512×600 CT, interactive preview and full still.

Part of ``make bench`` (``python -m tests.bench vr``). The volume is built in
memory (no DICOM): the synthetic chest slice of ``bench_render`` stacked to
600 slices of 0.7 mm, with the body tapering along z, a contrast aorta,
and a table under the patient. Each case times the farm's path minus the
volume load: edits (none), VTK render, read-back, JPEG encode. The first
render of a volume builds the pipeline (and on the CPU the gradient tables)
and is reported apart as ``first_ms``; then the camera turns 7° per call, as
a drag does, and p50/p90 are over those warm calls.

Targets (DESIGN.md): preview ≤ 200 ms, still ≤ 1 s on the 2-core machine.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from render_farm.cache import ByteLRUCache
from render_farm.encode import encode
from render_farm.volume import Volume
from render_farm.vr import clear_scenes, opengl_renderer, render_volume
from render_farm.vr_state import Cut, VRState

SIZE, SLICES = 512, 600
PIXEL_MM, SLICE_MM = 0.7, 0.7


def chest_volume(size: int = SIZE, slices: int = SLICES) -> Volume:
    """A synthetic int16 chest CT in HU, head-first supine, identity orientation."""
    from tests.bench.bench_render import chest_slice

    base = np.round(chest_slice(size)).astype(np.int16)
    voxels = np.empty((slices, size, size), dtype=np.int16)
    y, x = np.mgrid[0:size, 0:size] / size * 2.0 - 1.0
    table = (y > 0.72) & (y < 0.78) & (np.abs(x) < 0.9)
    for k in range(slices):
        # The body narrows towards both ends, so slices differ as in a real scan.
        taper = 1.0 - 0.25 * abs(k / slices - 0.5)
        body = (x / (0.85 * taper)) ** 2 + ((y - 0.05) / (0.62 * taper)) ** 2 <= 1.0
        voxels[k] = np.where(body, base, -1000)
        aorta = (x - 0.1) ** 2 + (y - 0.2) ** 2 <= 0.06 ** 2
        voxels[k][aorta & body] = 320
        voxels[k][table] = 200
    voxels.flags.writeable = False
    return Volume(voxels, np.array([-size * PIXEL_MM / 2, -size * PIXEL_MM / 2, 0.0]),
                  (SLICE_MM, PIXEL_MM, PIXEL_MM), np.eye(3), key="bench-chest-ct", modality="CT")


def _case(volume: Volume, state: VRState, mapper: str, repeats: int) -> dict[str, float]:
    start = time.perf_counter()
    encode(render_volume(volume, state, mapper=mapper), state.format, state.quality)
    first = (time.perf_counter() - start) * 1e3
    samples, size = [], 0
    for i in range(repeats):
        turned = state.replace(azimuth=7.0 * (i + 1))
        start = time.perf_counter()
        body, _ = encode(render_volume(volume, turned, mapper=mapper), state.format,
                         state.quality)
        samples.append((time.perf_counter() - start) * 1e3)
        size = len(body)
    samples.sort()
    return {"first_ms": first, "p50_ms": statistics.median(samples),
            "p90_ms": samples[min(len(samples) - 1, int(len(samples) * 0.9))],
            "kib": size / 1024}


def _edits(volume: Volume) -> dict[str, float]:
    """One-off costs of edits: the masks alone, then a first preview with them."""
    from render_farm.vr_edits import cut_mask, table_mask

    start = time.perf_counter()
    table_mask(volume)
    table_ms = (time.perf_counter() - start) * 1e3
    state = VRState(preset="ct_soft", render_quality="preview")
    cut = Cut(state.camera, ((200, 150), (320, 150), (320, 300), (200, 300)))
    start = time.perf_counter()
    cut_mask(volume, cut)
    cut_ms = (time.perf_counter() - start) * 1e3
    cache = ByteLRUCache(4 * 1024**3)
    start = time.perf_counter()
    render_volume(volume, state.replace(table_removal=True, cuts=(cut,)), cache=cache,
                  mapper="cpu")
    return {"table_mask_ms": table_ms, "cut_mask_ms": cut_ms,
            "first_preview_with_both_ms": (time.perf_counter() - start) * 1e3}


def run(repeats: int = 8) -> dict[str, dict[str, float]]:
    """Time preview (256² cast, shown at 512²) and still (512²) for bone and MIP."""
    volume = chest_volume()
    mappers = ["cpu"] + (["gpu"] if opengl_renderer() else [])
    results: dict[str, dict[str, float]] = {}
    for mapper in mappers:
        # Software OpenGL (llvmpipe) takes seconds per GPU frame: fewer repeats.
        count = repeats if mapper == "cpu" else 2
        for preset in ("ct_bone", "mip"):
            for quality in ("preview", "still"):
                state = VRState(preset=preset, render_quality=quality, width=512, height=512,
                                quality=85)
                results[f"{mapper}_{preset}_{quality}"] = _case(volume, state, mapper, count)
        clear_scenes()
    results["edits"] = _edits(volume)
    results["machine"] = {"opengl_renderer": opengl_renderer() or "none"}  # type: ignore[dict-item]
    clear_scenes()
    return results


if __name__ == "__main__":
    for name, figures in run().items():
        print(name, figures)
