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
_T = Tissue


def _only(*tissues: int) -> np.ndarray:
    """Boolean lookup table over uint8 labels: may a structure overwrite each label?"""
    lut = np.zeros(256, bool)
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
        if not len(s):
            return
        pix = min(g.dx, g.dy)
        rho = np.sqrt(s[:, 3] ** 2 - dz ** 2)
        # sub-pixel vessels keep a one-pixel trace instead of vanishing between pixel centres
        rho = np.where(rho > 0.3 * pix, np.maximum(rho, 0.71 * pix), rho)
        ci, cj = (s[:, 0] - g.xs[0]) / g.dx, (s[:, 1] - g.ys[0]) / g.dy
        # Tubes are sampled far finer than coarse pixels: keep only the biggest disc per
        # centre pixel, which is what dominates the union anyway.
        key = np.rint(ci).astype(np.int64) * (1 << 24) + np.rint(cj).astype(np.int64)
        order = np.lexsort((rho, key))
        order = order[np.r_[key[order][1:] != key[order][:-1], True]]
        ci, cj, rho = ci[order], cj[order], rho[order]
        # bucket by size so a few big discs do not blow up the stencil of hundreds of small ones
        bucket = np.ceil(np.log2(np.maximum(rho / pix, 1.0))).astype(int)
        for b in np.unique(bucket):
            m = bucket == b
            self._discs(lab, g, ci[m], cj[m], rho[m], value, allowed)

    @staticmethod
    def _discs(lab: np.ndarray, g: Grid, ci: np.ndarray, cj: np.ndarray, rho: np.ndarray,
               value: int, allowed: np.ndarray | None) -> None:
        """Paint discs of radius ``rho`` (mm) centred at fractional pixel ``(ci, cj)``."""
        hx, hy = int(np.ceil(rho.max() / g.dx)), int(np.ceil(rho.max() / g.dy))
        cols = np.rint(ci).astype(np.intp)[:, None, None] + np.arange(-hx, hx + 1)
        rows = np.rint(cj).astype(np.intp)[:, None, None] + np.arange(-hy, hy + 1)[:, None]
        d2 = ((cols - ci[:, None, None]) * g.dx) ** 2 + ((rows - cj[:, None, None]) * g.dy) ** 2
        n_rows, n_cols = lab.shape
        inside = (d2 <= rho[:, None, None] ** 2) & (cols >= 0) & (cols < n_cols)
        inside &= (rows >= 0) & (rows < n_rows)
        rr = np.broadcast_to(rows, inside.shape)[inside]
        cc = np.broadcast_to(cols, inside.shape)[inside]
        if allowed is not None:
            keep = allowed[lab[rr, cc]]
            rr, cc = rr[keep], cc[keep]
        lab[rr, cc] = value


def segment_spheres(p0: np.ndarray, p1: np.ndarray, r0: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """Spheres ``(x, y, z, r)`` along straight tapered segments, dense enough to read as tubes."""
    step = np.maximum(.3, .25 * np.minimum(r0, r1))
    n = (np.linalg.norm(p1 - p0, axis=1) / step).astype(int) + 2
    seg = np.repeat(np.arange(len(n)), n)
    t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n - 1, n)
    return np.c_[p0[seg] + t[:, None] * (p1 - p0)[seg], r0[seg] + t * (r1 - r0)[seg]]


def tube(points: np.ndarray, radii: Sequence[float]) -> np.ndarray:
    """Spheres along a polyline with one radius per vertex."""
    r = np.asarray(radii, float)
    return segment_spheres(points[:-1], points[1:], r[:-1], r[1:])


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
              "liver": (-60, -10, .92), "vertebral_body": (0, 58, 161 / 375), "table": (0, 122, .5)}


def _aorta_path() -> tuple[np.ndarray, list[float]]:
    """Aortic centreline: ascending, arch over the left main bronchus, descending."""
    phi = np.linspace(0, np.pi, 25)
    k = (1 - np.cos(phi))[:, None] / 2
    arch = np.hstack([np.array([-5, -30]) + k * np.array([30, 72]) + np.c_[12 * np.sin(phi), 0 * phi],
                      (.25 - .06 * np.sin(phi))[:, None]])
    pts = np.vstack([[(-5, -30, .45)], arch, [(8, 26, 1.02)]])
    return pts, [14.0] + [13.0] * len(arch) + [10.5]


def _vessel_tree(rng: np.random.Generator, hilum: np.ndarray, side: int,
                 generations: int) -> np.ndarray:
    """Pulmonary arterial tree from one hilum as spheres in (x, y, depth mm).

    Grown a generation at a time (vectorised): every branch splits in two in a
    random plane through its axis, radius shrinking by Murray's 2^(-1/3).
    """
    dirs = np.array([(.3 * side, -.3, -1), (.5 * side, .6, -.8), (.6 * side, -1, -.2), (side, 0, .1),
                     (side, .8, .2), (.5 * side, -.6, .8), (.5 * side, .7, .8), (.4 * side, .1, 1)])
    v = dirs / np.linalg.norm(dirs, axis=1)[:, None]
    p, length = np.repeat(hilum[None], len(v), 0), np.array([30., 30, 26, 26, 26, 34, 36, 42])
    r, parts = np.full(len(v), 4.5), []
    for _ in range(generations):
        q = p + v * length[:, None]
        parts.append(segment_spheres(p, q, r, .9 * r))
        w = rng.normal(size=v.shape)
        n = w - (w * v).sum(1)[:, None] * v
        n /= np.linalg.norm(n, axis=1)[:, None]
        ang = rng.uniform(.35, .6, size=(2, len(v), 1))
        v = np.vstack([np.cos(ang[0]) * v + np.sin(ang[0]) * n,
                       np.cos(ang[1]) * v - np.sin(ang[1]) * n])
        p, r = np.vstack([q, q]), np.tile(.79 * r, 2)
        length = np.tile(length, 2) * rng.uniform(.7, .85, size=2 * len(length))
    return np.vstack(parts)


def ct_slab(n_slices: int, thickness: float) -> tuple[float, float]:
    """``(z_top, length)`` of a chest CT's slab: it ends half a slice past the centres."""
    return thickness / 2, n_slices * thickness


def to_patient(xyur: np.ndarray, z_top: float, length: float) -> np.ndarray:
    """Map rows ``(x, y, u, ...)`` of the reference frame to ``(x, y, z, ...)`` in mm."""
    out = np.array(xyur, float)
    out[:, 2] = z_top - out[:, 2] * length
    return out


def nodule_xyzr(seed: int, z_top: float, length: float) -> np.ndarray:
    """Lung nodules ``(x, y, z, r)`` in patient mm; the seed jitters them inside the lungs."""
    rng = np.random.default_rng([seed, 0x90D])
    jitter = rng.uniform(-1, 1, size=(len(_NODULES), 3)) * [5, 5, .015]
    return to_patient(_NODULES + np.c_[jitter, np.zeros(len(_NODULES))], z_top, length)


def landmarks(z_top: float, length: float) -> dict[str, tuple[float, float, float]]:
    """Named points (patient mm) inside known tissues, for tests and demos."""
    pts, _ = _aorta_path()
    f = (.55 - .25) / (1.02 - .25)  # the descending aorta at u = 0.55
    named = {**_LANDMARKS, "aorta_descending": (*(pts[-2][:2] + f * (pts[-1][:2] - pts[-2][:2])), .55)}
    return {name: tuple(float(v) for v in to_patient(np.array([p]), z_top, length)[0])
            for name, p in named.items()}


def _body(u: float) -> tuple[float, float]:
    """Semi-axes (lateral, AP) of the skin outline at level u."""
    return 165 - 48 * (u - .45) ** 2, 115 - 32 * (u - .5) ** 2


class ChestPhantom:
    """Contrast-enhanced adult chest of one seed, laid over the slab ``[z_top - length, z_top]``."""

    def __init__(self, seed: int, z_top: float, length: float) -> None:
        self.z_top, self.length = z_top, length
        rng = np.random.default_rng([seed, 0xC4E57])
        # The trees grow in true mm (depth below the slab top); depth becomes u afterwards.
        # A slab squashed k-fold crams k times the vessels into each slice, so drop a
        # generation per halving: vessels per slice, and time per slice, stay about constant.
        gens = int(np.clip(11 + np.floor(np.log2(length / 375)), 5, 11))
        tree = [_vessel_tree(rng, np.array([48. * side, 0, .36 * 375]), side, gens) for side in (-1, 1)]
        tree_xyur = np.vstack(tree) / [1, 1, 375, 1]
        self.tree = Spheres(self._to_patient(tree_xyur))
        self.pulmonary = self._polylines(_PULMONARY)
        self.trachea = self._polylines(_TRACHEA)
        self.lumen = self._polylines([(p, [r - 2 for r in rs]) for p, rs in _TRACHEA])
        self.esophagus = self._polylines(_ESOPHAGUS)
        self.aorta = self._polylines([_aorta_path()])
        self.ribs, self.rib_marrow = self._ribs()
        self.nodules = Spheres(nodule_xyzr(seed, z_top, length))

    def _to_patient(self, xyur: np.ndarray) -> np.ndarray:
        return to_patient(xyur, self.z_top, self.length)

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

    def labels(self, g: Grid, z: float, vessels: bool = True) -> np.ndarray:
        """Tissue label image (uint8, ``g.shape``) of the axial plane at ``z``.

        ``vessels=False`` leaves out the peripheral lung vessels (invisible on PET).
        """
        u = (self.z_top - z) / self.length
        lab = np.zeros(g.shape, np.uint8)
        _table(lab, g)
        a, b = _body(u)
        for inset, tissue in ((0, _T.FAT), (10, _T.MUSCLE), (22, _T.MEDIASTINUM)):
            ellipse(lab, g, 0, 0, a - inset, b - inset, tissue)
        for sx in (-1, 1):
            ellipse(lab, g, 30 * sx, 95, 22, 16, _T.MUSCLE)  # paraspinal muscles
        _viscera(lab, g, u)
        for sph, tissue, allowed in (
                (self.trachea, _T.MUSCLE, None), (self.lumen, _T.AIR, None),
                (self.esophagus, _T.MUSCLE, _only(_T.MEDIASTINUM, _T.LUNG)),
                (self.tree if vessels else None, _T.VESSEL, _only(_T.LUNG)),
                (self.pulmonary, _T.VESSEL, _only(_T.MEDIASTINUM, _T.LUNG, _T.BLOOD)),
                (self.aorta, _T.AORTA, None)):
            if sph is not None:
                sph.stamp(lab, g, z, tissue, allowed)
        _skeleton(lab, g, u, b)
        self.ribs.stamp(lab, g, z, _T.CORTICAL)
        self.rib_marrow.stamp(lab, g, z, _T.CANCELLOUS)
        self.nodules.stamp(lab, g, z, _T.NODULE)
        return lab


def _table(lab: np.ndarray, g: Grid) -> None:
    """Carbon-fibre couch under the patient: two curved shells around a foam core."""
    r0 = np.searchsorted(g.ys, 120 - .0009 * 215 ** 2)
    depth = g.ys[r0:, None] - (120 - .0009 * g.xs ** 2)[None, :]  # mm below the cradle's top
    on = np.abs(g.xs)[None, :] <= 215
    sub = lab[r0:]
    sub[on & (depth >= 4) & (depth < 30)] = _T.TABLE_CORE
    sub[on & (((depth >= 0) & (depth < 4)) | ((depth >= 30) & (depth < 34)))] = _T.TABLE_SHELL


def _viscera(lab: np.ndarray, g: Grid, u: float) -> None:
    """Lungs, diaphragm domes with liver/spleen/stomach/kidneys below them, and the heart."""
    s = np.sqrt(np.clip((u - .03) / .25, 0, 1))  # lung apices are small and posterior
    for sx in (-1, 1):  # clipped by the rib cage, which gives the lungs their D shape
        ellipse(lab, g, 82 * sx, 25 * (1 - s), 68 * s, 102 * s, _T.LUNG, _only(_T.MEDIASTINUM))
    below = _only(_T.MEDIASTINUM, _T.LUNG)
    for cx, cy, u0, tissue in ((65, -5, .68, _T.SPLEEN), (-65, -10, .64, _T.LIVER)):
        r = 230 * np.sqrt(max(u - u0, 0))  # the dome widens going down, leaving the recesses
        ellipse(lab, g, cx, cy, r, r, tissue, below)
    if .72 < u < .86:
        ellipse(lab, g, 55, -35, 28, 20, _T.AIR, _only(_T.SPLEEN))  # gastric air bubble
    if u > .86:
        k = np.sqrt(min((u - .86) / .08, 1))
        for sx in (-1, 1):
            ellipse(lab, g, 75 * sx, 55, 26 * k, 38 * k, _T.KIDNEY,
                    _only(_T.MEDIASTINUM, _T.LIVER, _T.SPLEEN))
    if .40 < u < .74:
        h = np.sqrt(np.sin(np.pi * (u - .40) / .34))
        ellipse(lab, g, 15, -28, 66 * h, 56 * h, _T.MEDIASTINUM)  # pericardial fat
        ellipse(lab, g, 15, -28, 62 * h, 52 * h, _T.BLOOD)
        ellipse(lab, g, 32, -30, 36 * h, 32 * h, _T.MYOCARDIUM)  # left ventricular wall
        ellipse(lab, g, 34, -32, 21 * h, 18 * h, _T.BLOOD)


def _skeleton(lab: np.ndarray, g: Grid, u: float, body_b: float) -> None:
    """Vertebra (or disc), sternum, scapulae and clavicles at level u."""
    if (u * 375 - 4) % 28 < 6:  # a 6 mm disc every 28 mm
        ellipse(lab, g, 0, 58, 17, 17, _T.DISC)
    else:
        ellipse(lab, g, 0, 58, 17, 16, _T.CORTICAL)
        ellipse(lab, g, 0, 58, 14.5, 13.5, _T.CANCELLOUS)
    ellipse(lab, g, 0, 87, 13, 12, _T.CORTICAL)  # neural arch
    ellipse(lab, g, 0, 100, 3.5, 9, _T.CORTICAL)  # spinous process
    for sx in (-1, 1):
        ellipse(lab, g, 10 * sx, 77, 4.5, 7, _T.CORTICAL)  # pedicles
        ellipse(lab, g, 23 * sx, 88, 11, 5, _T.CORTICAL)  # transverse processes
        if .04 < u < .36:
            ellipse(lab, g, 105 * sx, 80, 42, 4.5, _T.CORTICAL, angle=-.52 * sx)  # scapula
        if u < .05:
            ellipse(lab, g, 65 * sx, -88, 40, 6, _T.CORTICAL, angle=.31 * sx)  # clavicle
    ellipse(lab, g, 0, 84, 8, 7, _T.CORD)
    if .10 < u < .62:
        ellipse(lab, g, 0, 16 - body_b, 16, 7, _T.CORTICAL)
        ellipse(lab, g, 0, 16 - body_b, 13, 4.5, _T.CANCELLOUS)


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
    """The chest anatomy behind a CT of ``n_slices`` slices (see :func:`ct_slab`)."""
    return ChestPhantom(seed, *ct_slab(n_slices, thickness))


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


def _gauss_matrix(n: int, sigma_px: float) -> np.ndarray:
    """Row-normalised Gaussian blur matrix (edges renormalised, so no dark rim)."""
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    k = np.exp(-0.5 * (d / max(sigma_px, 1e-3)) ** 2)
    return (k / k.sum(1, keepdims=True)).astype(np.float32)


def pet_suv_volume(seed: int, ct_slices: int, ct_thickness: float, rows: int,
                   cols: int) -> tuple[np.ndarray, Grid, np.ndarray, float]:
    """FDG PET of the same chest: SUV volume, grid, slice-centre z and slice spacing.

    The PET slices tile exactly the CT slab (about 4 mm each), so both series
    cover the same patient-space extent.  Each slice averages three planes of the
    label phantom (slab integration), gets Poisson-like noise and a 7 mm FWHM blur.
    """
    chest = chest_phantom(seed, ct_slices, ct_thickness)
    n = max(1, round(chest.length / 4.0))
    step = chest.length / n
    zs = chest.z_top - (np.arange(n) + 0.5) * step
    grid = Grid.centred(rows, cols, PET_FOV, PET_FOV)
    planes = (np.arange(3) - 1) * step / 3
    vol = np.stack([np.mean([PET_SUV[chest.labels(grid, z + d, vessels=False)] for d in planes], 0)
                    for z in zs])
    rng = np.random.default_rng([seed, 0x9E7])
    vol += rng.standard_normal(vol.shape, dtype=np.float32) * (0.3 * np.sqrt(vol) + 0.02)
    sigma = 7.0 / 2.355
    vol = np.einsum("ij,jkl->ikl", _gauss_matrix(n, sigma / step), vol)
    vol = np.einsum("kj,ijl->ikl", _gauss_matrix(rows, sigma / grid.dy), vol)
    vol = np.einsum("lj,ikj->ikl", _gauss_matrix(cols, sigma / grid.dx), vol)
    return np.clip(vol, 0, None), grid, zs, step


Brain = IntEnum("Brain", "AIR SCALP SKULL CSF GREY WHITE DEEP EYE FAT", start=0)
MR_T2 = np.array([0, 620, 80, 1500, 720, 470, 640, 1700, 700], np.int16)  # T2 TSE signal


def _brain_labels(g: Grid, u: float, xy: tuple[np.ndarray, np.ndarray],
                  waves: np.ndarray) -> np.ndarray:
    """Axial T2 head anatomy at level u (0 = vertex, 1 = orbits / skull base)."""
    x, y = xy
    B = Brain
    lab = np.zeros(g.shape, np.uint8)
    p = np.sqrt(max(0.0, 1 - ((u - .55) / .62) ** 2))  # skull narrows to the vertex and the base
    a, b = 74 * p, 92 * p
    for inset, tissue in ((0, B.SCALP), (5, B.SKULL), (11, B.CSF), (13, B.GREY), (18, B.WHITE)):
        ellipse(lab, g, 0, 0, a - inset, b - inset, tissue)
    # Sulci: zero crossings of a smooth random 3-D field give wiggly CSF clefts in the cortex.
    rn = np.hypot(x / max(a - 13, 1), y / max(b - 13, 1))
    field = sum(np.cos(kx * x + ky * y + kz * u * 150 + ph) for kx, ky, kz, ph in waves)
    brain = lab >= B.GREY
    lab[brain & (rn > (a - 26) / max(a - 13, 1)) & (np.abs(field) < .35)] = B.CSF
    lab[brain & (np.abs(x) < 1.5) & ((y < -20) | (y > 35))] = B.CSF  # interhemispheric fissure
    if .30 < u < .62:
        v = np.sin(np.pi * (u - .30) / .32)
        for sx in (-1, 1):
            ellipse(lab, g, 14 * sx, 6, 8 * v, 12 * v, B.DEEP)  # caudate / thalamus
            ellipse(lab, g, 8 * sx, -4, 5 * v, 24 * v, B.CSF, angle=.18 * sx)  # lateral ventricles
    if u > .70:
        ellipse(lab, g, 0, 12, 19, 17, B.CSF)  # cisterns around the brainstem
        ellipse(lab, g, 0, 12, 14, 13, B.WHITE)  # brainstem
        ellipse(lab, g, 0, 50, 48, 30, B.GREY, _only(B.WHITE, B.GREY, B.CSF))  # cerebellum
        folia = (np.cos(1.3 * y + .2 * x) > .85) & (lab == B.GREY) & (y > 25)
        lab[folia] = B.CSF
        ellipse(lab, g, 0, 27, 5, 3, B.CSF)  # fourth ventricle
    if u > .78:
        for sx in (-1, 1):
            ellipse(lab, g, 30 * sx, 30 - b, 17, 15, B.FAT)  # orbital fat
            ellipse(lab, g, 30 * sx, 28 - b, 11, 11, B.EYE)
    return lab


def brain_t2_slices(seed: int, n_slices: int, rows: int, cols: int,
                    fov: float = 230.0) -> Iterator[np.ndarray]:
    """Yield axial T2 TSE brain slices (uint16, 12-bit range), vertex first."""
    g = Grid.centred(rows, cols, fov, fov)
    x, y = np.meshgrid(g.xs, g.ys)
    rng = np.random.default_rng([seed, 0x312])
    k = rng.uniform(.15, .35, 12) * np.exp(1j * rng.uniform(0, 2 * np.pi, 12))  # ~20-40 mm gyri
    waves = np.c_[k.real, k.imag, rng.uniform(-.2, .2, 12), rng.uniform(0, 2 * np.pi, 12)]
    bias = 1 + .18 * (x ** 2 + y ** 2) / (fov / 2) ** 2  # receive coils are closer to the cortex
    for i in range(n_slices):
        img = soften(MR_T2[_brain_labels(g, (i + .5) / n_slices, (x, y), waves)]) * bias
        n1, n2 = rng.standard_normal((2, rows, cols)) * 18  # magnitude image => Rician noise
        yield np.clip(np.rint(np.hypot(img + n1, n2)), 0, 4095).astype(np.uint16)


def _capsule(chord: np.ndarray, arrival: np.ndarray, p: np.ndarray, q: np.ndarray,
             r: float, d0: float) -> None:
    """Rasterise one straight vessel piece: x-ray path length and contrast arrival distance."""
    lo = np.maximum(np.floor(np.minimum(p, q) - r - 1), 0).astype(int)
    hi = np.minimum(np.ceil(np.maximum(p, q) + r + 2), chord.shape[::-1]).astype(int)
    if (hi <= lo).any():
        return
    ys, xs = np.ogrid[lo[1]:hi[1], lo[0]:hi[0]]
    seg = q - p
    t = np.clip(((xs - p[0]) * seg[0] + (ys - p[1]) * seg[1]) / max(seg.dot(seg), 1e-9), 0, 1)
    d2 = (xs - p[0] - t * seg[0]) ** 2 + (ys - p[1] - t * seg[1]) ** 2
    c = 2 * np.sqrt(np.clip(r * r - d2, 0, None))  # chord through a round lumen
    sub = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    np.maximum(chord[sub], c, out=chord[sub])
    np.minimum(arrival[sub], np.where(c > 0, d0 + t * np.sqrt(seg.dot(seg)), np.inf), out=arrival[sub])


def _rot(v: np.ndarray, ang: float) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _xa_tree(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, ...]:
    """Coronary-like tree seen from a catheter tip: chord, arrival and catheter maps."""
    s = min(rows, cols) / 512
    chord, arrival = np.zeros((rows, cols)), np.full((rows, cols), np.inf)
    root = np.array([.34 * cols, .2 * rows])
    stack = [(root, np.array([.33, .94]), 150 * s, 4.5 * s, 0.0, 0)]
    while stack:
        p, v, length, r, d0, gen = stack.pop()
        for _ in range(3):  # three kinked pieces make a gently tortuous vessel
            v = _rot(v, rng.normal(0, .12))
            _capsule(chord, arrival, p, p + v * length / 3, r, d0)
            p, d0 = p + v * length / 3, d0 + length / 3
        if gen < 6:  # the vessel continues and gives off a thinner side branch
            stack.append((p, _rot(v, rng.uniform(-.3, .3)), .8 * length, .85 * r, d0, gen + 1))
            side = rng.choice([-1.0, 1.0]) * rng.uniform(.5, .9)
            stack.append((p, _rot(v, side), .65 * length, .65 * r, d0, gen + 1))
    cath, never = np.zeros((rows, cols)), np.full((rows, cols), np.inf)
    bend = np.array([.27 * cols, .08 * rows])
    for p, q in (((.2 * cols, -5.0), bend), (bend, root)):
        _capsule(cath, never, np.array(p), np.asarray(q), 2.5 * s, 0.0)
    return chord, arrival, cath


def _xa_background(rows: int, cols: int) -> np.ndarray:
    """Low-frequency chest background: lung, spine, heart shadow, diaphragm and ribs."""
    y, x = np.ogrid[0:1:rows * 1j, 0:1:cols * 1j]
    bg = 205 - 30 * y - 45 * np.exp(-((x - .6) / .07) ** 2)
    bg = bg - 35 * np.exp(-(((x - .45) / .3) ** 2 + ((y - .65) / .3) ** 2))
    bg = bg - 55 / (1 + np.exp(-(y - .85 + .25 * (x - .3) ** 2) / .025))
    return bg - 9 * np.cos(np.pi * (6 * y + 2.5 * (x - .45) ** 2)) ** 6


def xa_mask_frames(frames: int) -> int:
    """Number of leading contrast-free frames (usable as the DSA mask)."""
    return max(1, frames // 7)


def xa_frames(seed: int, frames: int, rows: int, cols: int) -> np.ndarray:
    """Cine of a contrast bolus filling the tree then washing out: uint8 ``(frames, rows, cols)``."""
    rng = np.random.default_rng([seed, 0xA4])
    chord, arrival, cath = _xa_tree(rng, rows, cols)
    bg = _xa_background(rows, cols) * np.exp(-.35 * cath)
    n_mask, mu = xa_mask_frames(frames), .14 * 512 / min(rows, cols)
    reach = arrival[np.isfinite(arrival)].max()
    out = np.empty((frames, rows, cols), np.uint8)
    for f in range(frames):
        img = bg
        if f >= n_mask:  # the front runs through the tree in ~45 % of the run, then washes out
            front = reach * (f - n_mask + 1) / max(1.0, .45 * frames)
            fill = np.clip((front - arrival) / (.08 * reach), 0, 1)
            img = bg * np.exp(-mu * chord * fill * (1 - .65 * np.clip((f / frames - .7) / .3, 0, 1)))
        out[f] = np.clip(np.rint(img + rng.normal(0, 2.0, (rows, cols))), 0, 255)
    return out


def marker_voxel(point: Sequence[float], shape: tuple[int, int, int],
                 spacing: Sequence[float]) -> tuple[int, int, int]:
    """Nearest voxel ``(k, j, i)`` of patient point ``(x, y, z)`` in a :func:`marker_block`."""
    n, rows, cols = shape
    sx, sy, sz = spacing
    return (round(n // 2 - point[2] / sz), round(point[1] / sy + rows // 2),
            round(point[0] / sx + cols // 2))


def marker_block(shape: tuple[int, int, int], spacing: Sequence[float],
                 markers: Sequence[Sequence[float]], radius: float = 0.0) -> np.ndarray:
    """Water block (0 HU) in air with 1000 HU markers; int16 HU ``(slices, rows, cols)``.

    Voxel ``(k, j, i)`` is at ``x = (i - cols//2) sx``, ``y = (j - rows//2) sy``,
    ``z = (n//2 - k) sz``: the origin is a voxel centre, slice 0 is the most superior.
    ``radius <= 0`` marks the single nearest voxel, otherwise a sphere.
    """
    n, rows, cols = shape
    vol = np.full(shape, -1000, np.int16)
    vol[:, rows // 8:rows - rows // 8, cols // 8:cols - cols // 8] = 0  # air margin shows the edges
    k, j, i = np.ogrid[:n, :rows, :cols]
    sx, sy, sz = spacing
    for mx, my, mz in markers:
        if radius > 0:
            vol[((i - cols // 2) * sx - mx) ** 2 + ((j - rows // 2) * sy - my) ** 2
                + ((n // 2 - k) * sz - mz) ** 2 <= radius ** 2] = 1000
        elif all(0 <= v < s for v, s in zip(marker_voxel((mx, my, mz), shape, spacing), shape)):
            vol[marker_voxel((mx, my, mz), shape, spacing)] = 1000
    return vol
