"""2-D render benchmark: warm 512×512 CT frame, windowed and encoded.

Part of ``make bench`` (``python -m tests.bench render``). Frames: a
mid-chest slice of the project's synthetic 300-slice CT (body, lungs with
vessels, mediastinum, contrast aorta, spine, ribs, table, noise), and a
simpler seeded phantom slice for comparison. "Cold" is the first render of
an instance not yet in the cache: read, decode, LUT, encode.
"""
from __future__ import annotations

import io
import statistics
import time

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from render_farm import (
    ByteLRUCache, Colormap, FitMode, ImageFormat, ViewState, open_source, render,
)

SIZE = 512
NOISE_HU = 14.0


def chest_slice(size: int = SIZE, seed: int = 7) -> np.ndarray:
    """Return HU values of a synthetic axial chest slice."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size * 2.0 - 1.0
    hu = np.full((size, size), -1000.0)

    def ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0

    hu[ellipse(0, 0.05, 0.85, 0.62)] = -100          # subcutaneous fat
    hu[ellipse(0, 0.05, 0.78, 0.55)] = 45            # muscle / mediastinum
    hu[ellipse(-0.38, 0.0, 0.28, 0.4)] = -850        # lungs
    hu[ellipse(0.38, 0.0, 0.28, 0.4)] = -850
    hu[ellipse(0.0, -0.05, 0.12, 0.14)] = 40         # heart
    hu[ellipse(0.0, 0.42, 0.09, 0.08)] = 700         # vertebral body
    hu[ellipse(0.0, 0.42, 0.06, 0.05)] = 250         # cancellous bone
    for angle in np.linspace(0.3, 2.8, 7):           # ribs
        cx, cy = 0.7 * np.cos(angle), 0.5 * np.sin(angle) + 0.05
        hu[ellipse(cx, cy, 0.03, 0.03)] = 800
        hu[ellipse(-cx, cy, 0.03, 0.03)] = 800
    hu += rng.normal(0.0, NOISE_HU, hu.shape) * (hu > -950)
    return hu


def ct_instance(hu: np.ndarray) -> bytes:
    """Encode HU values as an uncompressed CT Part 10 file (intercept -1024)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelSpacing = [0.703125, 0.703125]
    ds.PixelData = np.round(hu + 1024).astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _time(source, state: ViewState, repeats: int) -> dict[str, float]:
    render(source, state)  # warm: decode, LUT
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        body, _ = render(source, state)
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return {"p50_ms": statistics.median(samples),
            "p90_ms": samples[int(len(samples) * 0.9)],
            "kib": len(body) / 1024}


CASES = {
    "jpeg_q85": ViewState(quality=85),
    "jpeg_q90": ViewState(quality=90),
    "webp_q90": ViewState(format=ImageFormat.WEBP, quality=90),
    "webp_lossless": ViewState(format=ImageFormat.WEBP, quality=100),
    "png": ViewState(format=ImageFormat.PNG),
    "jpeg_q90_lung_window": ViewState(window_center=-600, window_width=1500, quality=90),
    "jpeg_q90_fit_800": ViewState(width=800, height=800, fit=FitMode.FIT, quality=90),
    "jpeg_q90_zoom2_pan": ViewState(width=512, height=512, zoom=2.0, pan_x=40, pan_y=-25),
    "jpeg_q90_rot30": ViewState(width=512, height=512, rotation=30),
    "jpeg_q90_hot": ViewState(colormap=Colormap.HOT),
}


def _cold(path, repeats: int = 30) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        body, _ = render(open_source(path, cache=ByteLRUCache(64 * 1024**2)), ViewState(quality=90))
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return {"p50_ms": statistics.median(samples), "p90_ms": samples[int(len(samples) * 0.9)],
            "kib": len(body) / 1024}


def run(repeats: int = 200) -> dict[str, dict[str, float]]:
    """Time every case on a warm cache and return p50/p90 ms and KiB."""
    from tests.bench.data import ct_folder

    files = sorted(p for p in ct_folder().iterdir() if p.suffix == ".dcm")
    mid = files[len(files) // 2]
    source = open_source(mid, cache=ByteLRUCache(256 * 1024**2))
    results = {name: _time(source, state, repeats) for name, state in CASES.items()}
    results["cold_jpeg_q90_uncached_instance"] = _cold(mid)
    phantom = open_source(ct_instance(chest_slice()), cache=ByteLRUCache(256 * 1024**2))
    results["phantom_slice_jpeg_q90"] = _time(phantom, ViewState(quality=90), repeats)
    # A new window each request: the LUT is rebuilt every time (interactive drag).
    cold, sizes = [], []
    for i in range(repeats):
        state = ViewState(window_center=40 + i * 0.37, window_width=400 + i * 0.11)
        start = time.perf_counter()
        body, _ = render(source, state)
        cold.append((time.perf_counter() - start) * 1e3)
        sizes.append(len(body))
    results["jpeg_q90_new_window_each_time"] = {
        "p50_ms": statistics.median(cold), "p90_ms": sorted(cold)[int(repeats * 0.9)],
        "kib": statistics.median(sizes) / 1024}
    return results


if __name__ == "__main__":
    for name, figures in run().items():
        print(f"{name:<32} p50 {figures['p50_ms']:6.2f} ms   p90 {figures['p90_ms']:6.2f} ms"
              f"   {figures['kib']:7.1f} KiB")
