"""Volume rendering presets (容积重建预设): transfer functions by tissue.

A preset maps modality values (HU for CT, scanner units for MR) to colour
and opacity, says whether the volume is composited with shading or shown
as a maximum intensity projection, and gives the lighting. The tables are
our own, chosen by the HU ranges of the tissues (fat ≈ −100, soft tissue
30–60, contrast-filled vessels 200–500, cortical bone 700–2,000); 3D
Slicer's presets were the sanity reference for the shapes, not the source
of the numbers.

Users adjust a preset the way they drag a window: :meth:`Preset.adjusted`
shifts every control point by a number of modality units and scales their
distances from the preset's centre (the "width").
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

#: Control points are (value, opacity) and (value, red, green, blue) in 0..1.
OpacityPoints = tuple[tuple[float, float], ...]
ColorPoints = tuple[tuple[float, float, float, float], ...]


class Blend(enum.Enum):
    """How samples along a ray are combined."""

    COMPOSITE = "composite"   # front-to-back alpha compositing (VR proper)
    MAXIMUM = "mip"           # maximum intensity projection


@dataclass(frozen=True)
class Preset:
    """One transfer function and its lighting.

    Attributes
    ----------
    name : str
        Query value (``preset=ct_bone``).
    title : str
        English label; the web app translates.
    opacity : tuple of (value, opacity)
        Scalar opacity, piecewise linear, values ascending.
    colors : tuple of (value, red, green, blue)
        Colour, piecewise linear, values ascending.
    center : float
        Value the width scale stretches about (the preset's "level").
    blend : Blend
    shade : bool
        Gradient (Phong) shading by default.
    ambient, diffuse, specular, specular_power : float
        Lighting coefficients when shaded.
    """

    name: str
    title: str
    opacity: OpacityPoints
    colors: ColorPoints
    center: float
    blend: Blend = Blend.COMPOSITE
    shade: bool = True
    ambient: float = 0.2
    diffuse: float = 0.8
    specular: float = 0.25
    specular_power: float = 12.0

    def __post_init__(self) -> None:
        for label, points in (("opacity", self.opacity), ("colors", self.colors)):
            values = [point[0] for point in points]
            if len(values) < 2 or values != sorted(values):
                raise ValueError(f"preset {self.name}: {label} needs ≥ 2 ascending points")

    def adjusted(self, shift: float = 0.0, scale: float = 1.0) -> Preset:
        """Return the preset with every control value moved to
        ``center + (value - center) * scale + shift``.

        Parameters
        ----------
        shift : float
            Modality units added to every point (the "level" drag).
        scale : float
            Factor on the distance from :attr:`center` (the "width" drag); > 0.
        """
        if scale <= 0:
            raise ValueError(f"transfer function scale must be > 0, got {scale}")
        if shift == 0.0 and scale == 1.0:
            return self

        def move(value: float) -> float:
            return self.center + (value - self.center) * scale + shift

        opacity = tuple((move(v), a) for v, a in self.opacity)
        colors = tuple((move(v), r, g, b) for v, r, g, b in self.colors)
        return Preset(self.name, self.title, opacity, colors, self.center + shift, self.blend,
                      self.shade, self.ambient, self.diffuse, self.specular,
                      self.specular_power)


_PRESETS = (
    Preset(
        "ct_bone", "CT bone",
        opacity=((-1000, 0.0), (130, 0.0), (250, 0.2), (600, 0.8), (3000, 0.9)),
        colors=((130, 0.55, 0.25, 0.15), (250, 0.85, 0.62, 0.42), (600, 0.96, 0.9, 0.8),
                (3000, 1.0, 1.0, 1.0)),
        center=400, specular=0.3, specular_power=15),
    Preset(
        "ct_soft", "CT soft tissue",
        opacity=((-1000, 0.0), (-300, 0.0), (-120, 0.08), (40, 0.35), (200, 0.6),
                 (3000, 0.8)),
        colors=((-300, 0.5, 0.25, 0.15), (-120, 0.88, 0.6, 0.5), (40, 0.8, 0.32, 0.26),
                (200, 0.95, 0.85, 0.75), (3000, 1.0, 1.0, 1.0)),
        center=0, specular=0.15),
    Preset(
        "ct_angio", "CTA vessels",
        opacity=((-1000, 0.0), (110, 0.0), (170, 0.15), (260, 0.6), (500, 0.8), (3000, 0.9)),
        colors=((110, 0.55, 0.08, 0.05), (200, 0.88, 0.22, 0.12), (350, 1.0, 0.75, 0.6),
                (800, 1.0, 1.0, 0.95)),
        center=250, specular=0.35, specular_power=20),
    Preset(
        "ct_lung", "CT lung",
        opacity=((-1000, 0.0), (-920, 0.0), (-850, 0.05), (-700, 0.2), (-480, 0.2),
                 (-380, 0.0), (3000, 0.0)),
        colors=((-920, 0.3, 0.35, 0.9), (-750, 0.85, 0.55, 0.5), (-480, 0.95, 0.85, 0.75),
                (3000, 1.0, 1.0, 1.0)),
        center=-700, specular=0.1),
    Preset(
        "ct_chest_contrast", "CT chest, contrast",
        opacity=((-1000, 0.0), (60, 0.0), (120, 0.4), (500, 0.65), (3000, 0.8)),
        colors=((60, 0.6, 0.12, 0.1), (120, 0.9, 0.42, 0.3), (500, 1.0, 0.9, 0.8),
                (3000, 1.0, 1.0, 1.0)),
        center=250),
    Preset(
        # Grey ramp over a CT window of 800 centred on 200: bone and contrast white.
        "mip", "MIP",
        opacity=((-2000, 1.0), (4000, 1.0)),
        colors=((-200, 0.0, 0.0, 0.0), (600, 1.0, 1.0, 1.0)),
        center=200, blend=Blend.MAXIMUM, shade=False),
    Preset(
        # Time-of-flight angiography: flowing blood is the brightest signal.
        "mr_angio", "MR angio",
        opacity=((0, 0.0), (150, 0.0), (180, 0.4), (220, 0.7), (300, 0.8), (4000, 0.8)),
        colors=((150, 0.6, 0.1, 0.08), (200, 0.95, 0.4, 0.3), (300, 1.0, 0.9, 0.85),
                (4000, 1.0, 1.0, 1.0)),
        center=200, specular=0.3),
    Preset(
        "mr_default", "MR default",
        opacity=((0, 0.0), (20, 0.0), (40, 0.15), (120, 0.3), (220, 0.4), (1024, 0.5)),
        colors=((0, 0.0, 0.0, 0.0), (20, 0.17, 0.0, 0.0), (40, 0.7, 0.35, 0.25),
                (120, 0.95, 0.75, 0.6), (220, 1.0, 0.95, 0.9), (1024, 1.0, 1.0, 1.0)),
        center=120),
)

#: Every preset by its query name.
PRESETS: dict[str, Preset] = {preset.name: preset for preset in _PRESETS}
DEFAULT_PRESET = "ct_bone"


def get_preset(name: str) -> Preset:
    """Return the preset called `name`.

    Raises
    ------
    ValueError
        Unknown name; the message lists the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown volume rendering preset {name!r}; "
                         f"known: {', '.join(sorted(PRESETS))}") from None
