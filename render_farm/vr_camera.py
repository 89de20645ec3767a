"""The volume rendering camera, defined in patient coordinates (DICOM LPS).

The farm computes the camera itself instead of asking VTK, so that the same
numbers place the VTK camera, map a scalpel polygon drawn on screen back to
voxels, and let the web app map a click to a ray. Projection is parallel
(orthographic): distances on screen are distances in the patient, at every
depth, as radiologists expect of a VR view.

Standard views, as the viewer stands (PS3.3 C.7.6.2.1.1 axes: +x patient
left, +y posterior, +z head):

=========  ===================  =========  =========================
view       looking along        screen up  screen right
=========  ===================  =========  =========================
anterior   +y (front to back)   head       patient left
posterior  −y                   head       patient right
left       −x (from the left)   head       posterior
right      +x (from the right)  head       anterior
head       −z (from above)      anterior   patient right
feet       +z (from below)      anterior   patient left (as axial CT)
=========  ===================  =========  =========================

Azimuth turns the camera about the screen's up axis, then elevation about
its right axis, then roll about the viewing direction, all about the
volume's centre, in degrees (VTK's ``Azimuth``/``Elevation``/``Roll`` order).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from render_farm.volume import Volume


class StandardView(enum.Enum):
    """The six standard directions a VR view starts from."""

    ANTERIOR = "anterior"
    POSTERIOR = "posterior"
    LEFT = "left"
    RIGHT = "right"
    HEAD = "head"
    FEET = "feet"


# (direction of projection, view up) in patient LPS.
_VIEWS = {
    StandardView.ANTERIOR: ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    StandardView.POSTERIOR: ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    StandardView.LEFT: ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    StandardView.RIGHT: ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    StandardView.HEAD: ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    StandardView.FEET: ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
}


@dataclass(frozen=True)
class Camera:
    """Where the viewer stands, independent of the volume.

    Attributes
    ----------
    view : StandardView
    azimuth, elevation, roll : float
        Degrees, in [0, 360).
    zoom : float
        1 fits the volume's bounding sphere into the shorter side.
    pan_x, pan_y : float
        Output pixels the picture is moved right and down (a drag's delta).
    width, height : int
        Output size in pixels.
    """

    view: StandardView = StandardView.ANTERIOR
    azimuth: float = 0.0
    elevation: float = 0.0
    roll: float = 0.0
    zoom: float = 1.0
    pan_x: float = 0.0
    pan_y: float = 0.0
    width: int = 512
    height: int = 512


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """A camera placed in front of one volume: everything needed to project.

    Attributes
    ----------
    focal : numpy.ndarray
        Patient point (mm) at the centre of the output.
    direction, up, right : numpy.ndarray
        Unit vectors in patient space: viewing direction, screen up, screen right.
    mm_per_pixel : float
        Patient mm per output pixel (parallel projection).
    width, height : int
    radius : float
        Half the diagonal of the volume's bounding box (mm).
    """

    focal: np.ndarray
    direction: np.ndarray
    up: np.ndarray
    right: np.ndarray
    mm_per_pixel: float
    width: int
    height: int
    radius: float

    @property
    def parallel_scale(self) -> float:
        """Half the output height in mm (VTK's ParallelScale)."""
        return self.mm_per_pixel * self.height / 2.0

    def project(self, points: np.ndarray) -> np.ndarray:
        """Output pixel coordinates ``[..., (x, y)]`` of patient points ``[..., 3]``.

        Continuous coordinates: pixel (column c, row r) covers [c, c+1) × [r, r+1).
        """
        offset = np.asarray(points, dtype=np.float64) - self.focal
        x = offset @ self.right / self.mm_per_pixel + self.width / 2.0
        y = -(offset @ self.up) / self.mm_per_pixel + self.height / 2.0
        return np.stack([x, y], axis=-1)

    def unproject(self, xy: np.ndarray) -> np.ndarray:
        """Patient points on the focal plane under output pixel coordinates ``[..., 2]``."""
        xy = np.asarray(xy, dtype=np.float64)
        dx = (xy[..., 0] - self.width / 2.0) * self.mm_per_pixel
        dy = (self.height / 2.0 - xy[..., 1]) * self.mm_per_pixel
        return self.focal + dx[..., None] * self.right + dy[..., None] * self.up


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation matrix by `degrees` about unit `axis` (right-handed, Rodrigues)."""
    x, y, z = axis
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    cross = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return c * np.eye(3) + s * cross + (1.0 - c) * np.outer(axis, axis)


def volume_bounds(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Patient-space (low, high) corners of the box around all voxel centres."""
    n = np.array(volume.shape, dtype=np.float64) - 1.0
    corners = np.array([[k, j, i] for k in (0, n[0]) for j in (0, n[1]) for i in (0, n[2])])
    points = volume.index_to_patient(corners)
    return points.min(axis=0), points.max(axis=0)


def place_camera(camera: Camera, volume: Volume) -> CameraFrame:
    """Place `camera` in front of `volume`.

    The camera looks at the centre of the volume's bounding box, so cropping
    or cutting never moves the view. Azimuth (VTK: about view up), elevation
    (about screen right) and roll (about the viewing direction) follow each
    other in that order; like VTK's ``Azimuth``/``Elevation``, a positive
    angle moves the camera, so the patient appears to turn the other way.
    """
    low, high = volume_bounds(volume)
    centre = (low + high) / 2.0
    radius = max(float(np.linalg.norm(high - low)) / 2.0, 1e-3)
    dop, up = (np.array(vector) for vector in _VIEWS[camera.view])
    # The camera sits at -dop from the focal point; turning the position about
    # `up` by +azimuth turns the direction of projection the same way.
    turn = _rotation(up, camera.azimuth)
    dop = turn @ dop
    right = np.cross(dop, up)
    tilt = _rotation(right, -camera.elevation)
    dop, up = tilt @ dop, tilt @ up
    spin = _rotation(dop, camera.roll)
    up = spin @ up
    right = np.cross(dop, up)
    shorter = min(camera.width, camera.height)
    mm_per_pixel = 2.0 * radius / shorter / camera.zoom
    # Moving the picture right by pan_x pixels moves the focal point left.
    focal = centre - camera.pan_x * mm_per_pixel * right + camera.pan_y * mm_per_pixel * up
    return CameraFrame(focal, dop, up, right, mm_per_pixel, camera.width, camera.height, radius)
