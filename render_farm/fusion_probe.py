"""What lies under a point of a fused view: the base value (HU) and the overlay value and SUV.

The fused picture (:mod:`render_farm.fusion`) is a plane of the base volume
placed in a viewport; a display point maps back through the viewport's
affine to a plane pixel, then to patient coordinates, where both volumes
are sampled (trilinear, as the picture was). PET values come with their
SUVbw when the series carries what the factor needs (:mod:`render_farm.suv`).
"""
from __future__ import annotations

import numpy as np

from render_farm.cache import ByteLRUCache
from render_farm.fusion import overlay_suv_factor, slice_plane, split_query
from render_farm.mpr import plane_for
from render_farm.points import sample_points
from render_farm.suv import SUVError
from render_farm.viewport import viewport_geometry
from render_farm.volume import load_volume


def fusion_probe(cache: ByteLRUCache, base_key: str, base_paths: list[str], overlay_key: str,
                 overlay_paths: list[str], query: str, x: float, y: float) -> dict:
    """Operation: values under display point (`x`, `y`) of the fused view `query`.

    Parameters
    ----------
    cache, base_key, base_paths, overlay_key, overlay_paths, query
        As for :func:`render_farm.fusion.fusion_frame`.
    x, y : float
        Browser offsets in output pixels of the view (pixel centres at +0.5).

    Returns
    -------
    dict
        ``point`` (patient mm), ``base`` (modality value, e.g. HU), ``overlay``
        (stored units, None outside the overlay volume), ``suv`` (SUVbw, or
        None with ``suv_error`` saying why), ``overlay_modality``.
    """
    fusion, view = split_query(query)
    base = load_volume(cache, base_key, base_paths)
    overlay = load_volume(cache, overlay_key, overlay_paths)
    if fusion.mpr is not None:
        plane = plane_for(base, fusion.mpr)
    else:
        index = base.shape[0] // 2 if fusion.slice_index is None else fusion.slice_index
        plane = slice_plane(base, index)
    u, v = viewport_geometry(view, plane.size, plane.spacing).to_image @ np.array([x, y, 1.0])
    point = plane.pixel_to_patient((v - 0.5, u - 0.5))
    base_value = float(sample_points(base, point))
    overlay_value = float(sample_points(overlay, point, fill=np.nan))
    answer = {"point": [round(float(c), 2) for c in point], "base": round(base_value, 1),
              "overlay": None if np.isnan(overlay_value) else round(overlay_value, 3),
              "overlay_modality": overlay.modality, "suv": None}
    if answer["overlay"] is not None and overlay.modality == "PT":
        try:
            answer["suv"] = round(overlay_value * overlay_suv_factor(cache, overlay_key,
                                                                     overlay_paths), 2)
        except SUVError as exc:
            answer["suv_error"] = str(exc)
    return answer
