"""Seeded numpy phantoms behind :mod:`app.demo.synthetic` (no DICOM in here).

Coordinates are patient LPS millimetres: +x towards the patient's left, +y
posterior, +z towards the head.  In-plane, column ``i`` / row ``j`` of a
:class:`Grid` sample ``x = xs[i]`` / ``y = ys[j]``; grids are centred on the
isocentre, so images come out in the usual radiological view (patient's right
on the image left, anterior at the top).

The chest is drawn in a reference frame ``(x, y, u)`` where ``u`` runs from 0
at the top of the scanned slab (thoracic inlet) to 1 at its bottom (upper
abdomen, top of the kidneys); a slab ``[z_top - length, z_top]`` maps it with
``z = z_top - u * length``.  Every series therefore shows apex to upper abdomen
whatever its slice count, while radii and in-plane sizes stay in true mm, so
small test series look squashed in z but nodules stay spheres.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

CT_FOV = 360.0  # mm, reconstruction diameter of the chest CT (0.703125 mm at 512)
PET_FOV = 512.0  # mm, 4 mm pixels at 128 and wide enough to contain the whole CT FOV
CT_NOISE_SD = 14.0  # HU, quantum noise of a standard-dose chest CT
_NAMES = ("AIR TABLE_SHELL TABLE_CORE FAT MUSCLE MEDIASTINUM LUNG VESSEL BLOOD MYOCARDIUM"
          " AORTA CORTICAL CANCELLOUS DISC CORD LIVER SPLEEN KIDNEY NODULE")
Tissue = IntEnum("Tissue", _NAMES, start=0)
"""Tissue labels of the chest; index into :data:`CT_HU` and :data:`PET_SUV`."""
CT_HU = np.array([-1000, 300, -850, -100, 45, -90, -850, 180, 40, 45,
                  260, 800, 250, 80, 30, 65, 50, 150, 25], np.int16)
# FDG uptake: hot myocardium and nodules, renal excretion standing in for the bladder.
PET_SUV = np.array([0, 0, 0, .35, .7, .4, .3, 1.6, 1.8, 6,
                    1.7, .4, 1.6, .5, 1, 2.3, 1.9, 14, 9], np.float32)
T = Tissue


def _only(*tissues: int) -> np.ndarray:
    """Boolean lookup table: may a structure overwrite each label?"""
    lut = np.zeros(len(Tissue), bool)
    lut[list(tissues)] = True
    return lut


@dataclass(frozen=True)
class Grid:
    """In-plane sampling of one image: pixel centre coordinates in mm."""

    xs: np.ndarray
    ys: np.ndarray
    dx: float
    dy: float

    @classmethod
    def centred(cls, rows: int, cols: int, fov_y: float, fov_x: float) -> Grid:
        """Grid of ``rows x cols`` pixels spanning the FOV, centred on x = y = 0."""
        dx, dy = fov_x / cols, fov_y / rows
        xs = (np.arange(cols) + 0.5) * dx - fov_x / 2
        return cls(xs, (np.arange(rows) + 0.5) * dy - fov_y / 2, dx, dy)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return len(self.ys), len(self.xs)


def ellipse(lab: np.ndarray, g: Grid, cx: float, cy: float, a: float, b: float,
            value: int, allowed: np.ndarray | None = None, angle: float = 0.0) -> None:
    """Paint a filled ellipse (semi-axes ``a`` along x, ``b`` along y, rotated by ``angle`` rad)."""
    if a <= 0 or b <= 0:
        return
    ext = max(a, b) if angle else None
    c0, c1 = np.searchsorted(g.xs, [cx - (ext or a), cx + (ext or a)])
    r0, r1 = np.searchsorted(g.ys, [cy - (ext or b), cy + (ext or b)])
    if c0 >= c1 or r0 >= r1:
        return
    dx, dy = g.xs[c0:c1][None, :] - cx, g.ys[r0:r1][:, None] - cy
    if angle:  # rotate into the ellipse's own axes
        cs, sn = np.cos(angle), np.sin(angle)
        inside = ((dx * cs + dy * sn) / a) ** 2 + ((dy * cs - dx * sn) / b) ** 2 <= 1
    else:  # row spans: one 2-D comparison instead of two squares and a sum
        half = a * np.sqrt(np.clip(1 - (dy[:, 0] / b) ** 2, 0, None))
        inside = np.abs(dx) <= half[:, None]
    sub = lab[r0:r1, c0:c1]
    if allowed is not None:
        inside &= allowed[sub]
    sub[inside] = value


class Spheres:
    """Spheres ``(x, y, z, r)`` in patient mm, sorted by z so a slice finds its own quickly."""

    def __init__(self, xyzr: np.ndarray) -> None:
        self.xyzr = xyzr[np.argsort(xyzr[:, 2], kind="stable")]
        self.rmax = float(self.xyzr[:, 3].max()) if len(xyzr) else 0.0

    def stamp(self, lab: np.ndarray, g: Grid, z: float, value: int,
              allowed: np.ndarray | None = None) -> None:
        """Paint the discs where the plane at ``z`` cuts the spheres."""
        lo, hi = np.searchsorted(self.xyzr[:, 2], [z - self.rmax, z + self.rmax])
        s = self.xyzr[lo:hi]
        dz = s[:, 2] - z
        s, dz = s[np.abs(dz) < s[:, 3]], dz[np.abs(dz) < s[:, 3]]
        pix = min(g.dx, g.dy)
        rho = np.sqrt(s[:, 3] ** 2 - dz ** 2)
        # sub-pixel vessels keep a one-pixel trace instead of vanishing between pixel centres
        rho = np.where(rho > 0.3 * pix, np.maximum(rho, 0.71 * pix), rho)
        # bucket by size so a few big discs do not blow up the stencil of hundreds of small ones
        bucket = np.ceil(np.log2(np.maximum(rho / pix, 1.0))).astype(int)
        for b in np.unique(bucket):
            m = bucket == b
            self._discs(lab, g, s[m, 0], s[m, 1], rho[m], value, allowed)

    @staticmethod
    def _discs(lab: np.ndarray, g: Grid, x: np.ndarray, y: np.ndarray, rho: np.ndarray,
               value: int, allowed: np.ndarray | None) -> None:
        ci, cj = (x - g.xs[0]) / g.dx, (y - g.ys[0]) / g.dy
        hx, hy = int(np.ceil(rho.max() / g.dx)), int(np.ceil(rho.max() / g.dy))
        cols = np.rint(ci).astype(np.intp)[:, None, None] + np.arange(-hx, hx + 1)
        rows = np.rint(cj).astype(np.intp)[:, None, None] + np.arange(-hy, hy + 1)[:, None]
        d2 = ((cols - ci[:, None, None]) * g.dx) ** 2 + ((rows - cj[:, None, None]) * g.dy) ** 2
        n_rows, n_cols = lab.shape
        inside = (d2 <= rho[:, None, None] ** 2) & (cols >= 0) & (cols < n_cols)
        inside &= (rows >= 0) & (rows < n_rows)
        rr, cc = np.broadcast_to(rows, inside.shape)[inside], np.broadcast_to(cols, inside.shape)[inside]
        if allowed is not None:
            keep = allowed[lab[rr, cc]]
            rr, cc = rr[keep], cc[keep]
        lab[rr, cc] = value


def tube(points: np.ndarray, radii: Sequence[float]) -> np.ndarray:
    """Spheres ``(x, y, z, r)`` along a polyline, dense enough to read as a smooth tube."""
    out = []
    for p0, p1, r0, r1 in zip(points[:-1], points[1:], radii[:-1], radii[1:]):
        n = int(np.linalg.norm(p1 - p0) / max(0.3, 0.25 * min(r0, r1))) + 2
        t = np.linspace(0.0, 1.0, n)[:, None]
        out.append(np.hstack([p0 + t * (p1 - p0), r0 + t * (r1 - r0)]))
    return np.vstack(out)


# Polylines in (x, y, u) with one radius per vertex; u as in the module docstring.
_TRACHEA = [([(-3, 12, -.05), (-3, 14, .30)], [10, 10]),
            ([(-3, 14, .30), (-45, 14, .36)], [8, 7]), ([(-3, 14, .30), (45, 14, .36)], [8, 7])]
_PULMONARY = [([(25, -50, .43), (15, -5, .34)], [11, 11]),
              ([(15, -5, .34), (-48, 2, .37)], [9, 8]), ([(15, -5, .34), (48, -2, .35)], [9, 8])]
_ESOPHAGUS = [([(-2, 33, -.05), (-2, 33, .85)], [7, 7])]
# Nodules (x, y, u, radius mm); seed jitter keeps them well inside the lung fields.
_NODULES = np.array([(-80, -20, .28, 4), (78, -5, .36, 3), (-85, 45, .56, 7), (90, 45, .58, 5)])
_LANDMARKS = {"lung_right": (-105, 20, .45), "lung_left": (105, 20, .45),
              "aorta_ascending": (-5, -30, .33), "heart": (15, -28, .57),
              "liver": (-60, -10, .92), "vertebral_body": (0, 58, 167 / 375), "table": (0, 122, .5)}


def _aorta_path() -> tuple[np.ndarray, list[float]]:
    """Aortic centreline: ascending, arch over the left main bronchus, descending."""
    phi = np.linspace(0, np.pi, 25)
    k = (1 - np.cos(phi))[:, None] / 2
    arch = np.hstack([np.array([-5, -30]) + k * np.array([30, 72]) + np.c_[12 * np.sin(phi), 0 * phi],
                      (.25 - .06 * np.sin(phi))[:, None]])
    pts = np.vstack([[(-5, -30, .45)], arch, [(8, 26, 1.02)]])
    return pts, [14.0] + [13.0] * len(arch) + [10.5]


def _vessel_tree(rng: np.random.Generator, hilum: np.ndarray, side: int) -> list[np.ndarray]:
    """Pulmonary arterial tree from one hilum as (x, y, depth-mm) segment spheres."""
    trunks = [(.45 * side, -.25, -1.0), (side, -.5, .15), (.55 * side, .55, 1.0)]
    stack = [(hilum, np.array(v) / np.linalg.norm(v), 26.0, 4.5, 0) for v in trunks]
    segments = []
    while stack:
        p, v, length, r, gen = stack.pop()
        q = p + v * length
        segments.append(tube(np.array([p, q]), [r, .85 * r]))
        if gen < 6:  # symmetric-ish bifurcation in a random plane through the parent axis
            w = rng.normal(size=3)
            n = w - w.dot(v) * v
            n /= np.linalg.norm(n)
            for sgn in (1, -1):
                ang = rng.uniform(.35, .6)
                stack.append((q, np.cos(ang) * v + sgn * np.sin(ang) * n, .78 * length, .72 * r, gen + 1))
    return segments


def _body(u: float) -> tuple[float, float]:
    """Semi-axes (lateral, AP) of the skin outline at level u."""
    return 165 - 48 * (u - .45) ** 2, 115 - 32 * (u - .5) ** 2


class ChestPhantom:
    """Contrast-enhanced adult chest of one seed, laid over the slab ``[z_top - length, z_top]``."""

    def __init__(self, seed: int, z_top: float, length: float) -> None:
        self.z_top, self.length = z_top, length
        rng = np.random.default_rng([seed, 0xC4E57])
        tree = []
        for side in (-1, 1):  # the tree grows in true mm; depth becomes u afterwards
            hilum = np.array([48 * side, 0, .36 * 375])
            tree += _vessel_tree(rng, hilum, side)
        tree_xyur = np.vstack(tree) / [1, 1, 375, 1]
        self.tree = Spheres(self._to_patient(tree_xyur))
        self.pulmonary = self._polylines(_PULMONARY)
        self.trachea = self._polylines(_TRACHEA)
        self.lumen = self._polylines([(p, [r - 2 for r in rs]) for p, rs in _TRACHEA])
        self.esophagus = self._polylines(_ESOPHAGUS)
        self.aorta = Spheres(self._to_patient(tube(*_aorta_path())))
        self.ribs, self.rib_marrow = self._ribs()
        self.nodule_xyzr = self._to_patient(self._nodules(seed))
        self.nodules = Spheres(self.nodule_xyzr)

    def _to_patient(self, xyur: np.ndarray) -> np.ndarray:
        out = np.array(xyur, float)
        out[:, 2] = self.z_top - out[:, 2] * self.length
        return out

    def _polylines(self, lines: list) -> Spheres:
        """Map (x, y, u) vertices to patient space *before* sampling so spacing is true mm."""
        pts = [tube(self._to_patient(np.c_[np.array(p, float), np.zeros(len(p))])[:, :3], r)
               for p, r in lines]
        return Spheres(np.vstack(pts))

    def _ribs(self) -> tuple[Spheres, Spheres]:
        """Twelve rib pairs curving from the spine round to the front, sloping down anteriorly."""
        lines = []
        for i in range(12):
            theta = np.linspace(.2, min(1.6 + .12 * i, 2.5), 40)
            u = .06 + .062 * i + .16 * (theta - .2) / 2.3
            a, b = _body(.06 + .062 * i)
            for side in (-1, 1):
                pts = np.c_[side * (a - 16) * np.sin(theta), (b - 16) * np.cos(theta), u]
                lines.append((pts, [4.5] * len(theta)))
        marrow = [(p, [2.8] * len(r)) for p, r in lines]
        return self._polylines(lines), self._polylines(marrow)

    @staticmethod
    def _nodules(seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 0x90D])
        jitter = rng.uniform(-1, 1, size=(len(_NODULES), 3)) * [5, 5, .015]
        return _NODULES + np.c_[jitter, np.zeros(len(_NODULES))]

    def point(self, x: float, y: float, u: float) -> tuple[float, float, float]:
        """Patient coordinates of reference point ``(x, y, u)``."""
        return float(x), float(y), float(self.z_top - u * self.length)

    def landmarks(self) -> dict[str, tuple[float, float, float]]:
        """Named points (patient mm) inside known tissues, for tests and demos."""
        out = {name: self.point(*p) for name, p in _LANDMARKS.items()}
        pts, _ = _aorta_path()
        f = (.55 - .25) / (1.02 - .25)  # the descending aorta at u = 0.55
        out["aorta_descending"] = self.point(*(pts[-2][:2] + f * (pts[-1][:2] - pts[-2][:2])), .55)
        return out

    def labels(self, g: Grid, z: float) -> np.ndarray:
        """Tissue label image (uint8, ``g.shape``) of the axial plane at ``z``."""
        u = (self.z_top - z) / self.length
        lab = np.zeros(g.shape, np.uint8)
        _table(lab, g)
        a, b = _body(u)
        for inset, tissue in ((0, T.FAT), (10, T.MUSCLE), (22, T.MEDIASTINUM)):
            ellipse(lab, g, 0, 0, a - inset, b - inset, tissue)
        for sx in (-1, 1):
            ellipse(lab, g, 30 * sx, 95, 22, 16, T.MUSCLE)  # paraspinal muscles
        _viscera(lab, g, u)
        for sph, tissue, allowed in (
                (self.trachea, T.MUSCLE, None), (self.lumen, T.AIR, None),
                (self.esophagus, T.MUSCLE, _only(T.MEDIASTINUM, T.LUNG)),
                (self.tree, T.VESSEL, _only(T.LUNG)),
                (self.pulmonary, T.VESSEL, _only(T.MEDIASTINUM, T.LUNG, T.BLOOD)),
                (self.aorta, T.AORTA, None)):
            sph.stamp(lab, g, z, tissue, allowed)
        _skeleton(lab, g, u, b)
        self.ribs.stamp(lab, g, z, T.CORTICAL)
        self.rib_marrow.stamp(lab, g, z, T.CANCELLOUS)
        self.nodules.stamp(lab, g, z, T.NODULE)
        return lab


def _table(lab: np.ndarray, g: Grid) -> None:
    """Carbon-fibre couch under the patient: two curved shells around a foam core."""
    r0 = np.searchsorted(g.ys, 120.0)
    depth = g.ys[r0:, None] - (120 + .0009 * g.xs ** 2)[None, :]  # mm below the curved top
    on = np.abs(g.xs)[None, :] <= 215
    sub = lab[r0:]
    sub[on & (depth >= 4) & (depth < 30)] = T.TABLE_CORE
    sub[on & (((depth >= 0) & (depth < 4)) | ((depth >= 30) & (depth < 34)))] = T.TABLE_SHELL


def _viscera(lab: np.ndarray, g: Grid, u: float) -> None:
    """Lungs, diaphragm domes with liver/spleen/stomach/kidneys below them, and the heart."""
    s = np.sqrt(np.clip((u - .03) / .25, 0, 1))  # lung apices are small and posterior
    for sx in (-1, 1):
        ellipse(lab, g, 75 * sx, 5 + 25 * (1 - s), 55 * s, 85 * s, T.LUNG, _only(T.MEDIASTINUM))
    below = _only(T.MEDIASTINUM, T.LUNG)
    for cx, cy, u0, tissue in ((65, -5, .68, T.SPLEEN), (-65, -10, .64, T.LIVER)):
        r = 230 * np.sqrt(max(u - u0, 0))  # the dome widens going down, leaving the recesses
        ellipse(lab, g, cx, cy, r, r, tissue, below)
    if .72 < u < .86:
        ellipse(lab, g, 55, -35, 28, 20, T.AIR, _only(T.SPLEEN))  # gastric air bubble
    if u > .86:
        k = np.sqrt(min((u - .86) / .08, 1))
        for sx in (-1, 1):
            ellipse(lab, g, 75 * sx, 55, 26 * k, 38 * k, T.KIDNEY, _only(T.MEDIASTINUM, T.LIVER, T.SPLEEN))
    if .40 < u < .74:
        h = np.sqrt(np.sin(np.pi * (u - .40) / .34))
        ellipse(lab, g, 15, -28, 66 * h, 56 * h, T.MEDIASTINUM)  # pericardial fat
        ellipse(lab, g, 15, -28, 62 * h, 52 * h, T.BLOOD)
        ellipse(lab, g, 32, -30, 36 * h, 32 * h, T.MYOCARDIUM)  # left ventricular wall
        ellipse(lab, g, 34, -32, 21 * h, 18 * h, T.BLOOD)


def _skeleton(lab: np.ndarray, g: Grid, u: float, body_b: float) -> None:
    """Vertebra (or disc), sternum, scapulae and clavicles at level u."""
    if (u * 375 - 4) % 28 < 6:  # a 6 mm disc every 28 mm
        ellipse(lab, g, 0, 58, 17, 17, T.DISC)
    else:
        ellipse(lab, g, 0, 58, 17, 16, T.CORTICAL)
        ellipse(lab, g, 0, 58, 14.5, 13.5, T.CANCELLOUS)
    ellipse(lab, g, 0, 87, 13, 12, T.CORTICAL)  # neural arch
    ellipse(lab, g, 0, 100, 3.5, 9, T.CORTICAL)  # spinous process
    for sx in (-1, 1):
        ellipse(lab, g, 10 * sx, 77, 4.5, 7, T.CORTICAL)  # pedicles
        ellipse(lab, g, 23 * sx, 88, 11, 5, T.CORTICAL)  # transverse processes
        if .04 < u < .36:
            ellipse(lab, g, 105 * sx, 80, 42, 4.5, T.CORTICAL, angle=-.52 * sx)  # scapula
        if u < .05:
            ellipse(lab, g, 65 * sx, -88, 40, 6, T.CORTICAL, angle=.31 * sx)  # clavicle
    ellipse(lab, g, 0, 84, 8, 7, T.CORD)
    if .10 < u < .62:
        ellipse(lab, g, 0, 16 - body_b, 16, 7, T.CORTICAL)
        ellipse(lab, g, 0, 16 - body_b, 13, 4.5, T.CANCELLOUS)


def soften(hu: np.ndarray) -> np.ndarray:
    """Separable 1-2-1 blur in int16, standing in for the reconstruction kernel's partial volume.

    Values must stay within +-2047 so the x16 intermediate fits in int16.
    """
    v = hu * 2
    v[1:] += hu[:-1]
    v[:-1] += hu[1:]
    v[[0, -1]] += hu[[0, -1]]
    w = v * 2
    w[:, 1:] += v[:, :-1]
    w[:, :-1] += v[:, 1:]
    w[:, [0, -1]] += v[:, [0, -1]]
    w += 8
    w >>= 4
    return w


def ct_geometry(n_slices: int, rows: int, cols: int, thickness: float) -> tuple[Grid, np.ndarray]:
    """In-plane grid and slice-centre z of the chest CT: slice k sits at ``z = -k * thickness``."""
    return Grid.centred(rows, cols, CT_FOV, CT_FOV), -np.arange(n_slices) * thickness


def chest_phantom(seed: int, n_slices: int, thickness: float) -> ChestPhantom:
    """The chest anatomy behind a CT of ``n_slices`` (its slab ends half a slice past the centres)."""
    return ChestPhantom(seed, z_top=thickness / 2, length=n_slices * thickness)


def ct_hu_slices(seed: int, n_slices: int, rows: int, cols: int,
                 thickness: float) -> Iterator[np.ndarray]:
    """Yield the chest CT slices (int16 HU, clipped to -1024..3071), head first."""
    grid, zs = ct_geometry(n_slices, rows, cols, thickness)
    chest = chest_phantom(seed, n_slices, thickness)
    rng = np.random.default_rng([seed, 0x4E015E])
    # One bank of white noise read at random offsets: as good as fresh noise per slice
    # (offsets are not row-aligned) at a fraction of the cost of drawing 78 M normals.
    n = rows * cols
    bank = np.rint(rng.standard_normal(2 * n + 4099) * CT_NOISE_SD).astype(np.int16)
    for z, off in zip(zs, rng.integers(0, n + 4099, size=n_slices)):
        hu = soften(CT_HU[chest.labels(grid, z)])
        hu += bank[off:off + n].reshape(rows, cols)
        yield np.clip(hu, -1024, 3071, out=hu)
