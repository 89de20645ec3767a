"""Volume rendering (容积重建) with VTK, offscreen, on the GPU or the CPU.

Pipeline per volume, kept alive between calls (building it, and the CPU
ray caster's gradient tables, costs seconds on a 600-slice CT)::

    voxels (int16, zero-copy) → vtkImageData (index frame, spacing in mm)
        → vtkGPUVolumeRayCastMapper | vtkFixedPointVolumeRayCastMapper
        → vtkVolume (preset colour/opacity/shading) → offscreen vtkRenderWindow

VTK sees the volume in its own index frame (x = column, y = row, z = slice,
in mm, origin at voxel 0); the camera, defined in patient coordinates by
:mod:`render_farm.vr_camera`, is carried into that frame instead of the
volume being resampled. A left-handed index frame (slices stacked against
the normal) renders mirrored, and the picture is flipped back.

Mapper choice: ``mapper="gpu"`` or ``"cpu"`` forces one; ``"auto"`` (the
default, or ``PACS_VR_MAPPER``) takes the GPU ray caster only when the
OpenGL context is a real GPU. Mesa's llvmpipe also runs the GPU mapper,
correctly but several times slower than the CPU ray caster, so auto
treats a software rasteriser as no GPU.

VTK rendering is not thread-safe: one lock serialises all of it.

Performance (2-core dev machine shared with other work, load ~2; synthetic
512×512×600 int16 chest CT, 0.7 mm; render + read-back + JPEG q85, camera
turning 7° per call; ``python -m tests.bench vr``)::

                          CPU ray caster     GPU mapper on llvmpipe
    bone, preview 256²→512²    66 ms              881 ms
    bone, still 512²          245 ms            3,570 ms
    MIP, preview               100 ms              221 ms
    MIP, still                 422 ms              576 ms
    first render of a volume   ~5 s (CPU: gradient tables for shading; see prepare())
    edits, once per edit list  table removal mask 1.2 s, one scalpel cut 1.5 s,
                               then a new pipeline for the edited voxels (~5 s)

Preview casts at most 256² pixels with a 2.5× longer ray step and scales
the picture up; a still casts every pixel at the finest voxel spacing.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from collections import OrderedDict
from functools import lru_cache

import numpy as np
from PIL import Image
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLogger, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
from vtkmodules.vtkRenderingCore import (
    vtkColorTransferFunction, vtkRenderer, vtkRenderWindow, vtkVolume, vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  - registers the OpenGL classes
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkOpenGLGPUVolumeRayCastMapper

from render_farm.cache import ByteLRUCache
from render_farm.encode import encode
from render_farm.volume import Volume, load_volume
from render_farm.vr_camera import CameraFrame, place_camera, volume_bounds
from render_farm.vr_edits import edited_voxels, volume_identity
from render_farm.vr_presets import Blend, Preset, get_preset
from render_farm.vr_state import VRState

# The EGL window is found only after the X one fails, which logs a harmless
# "bad X server connection" warning; errors still reach stderr.
vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)

#: Longest side of the picture a preview is ray cast at (then scaled up).
PREVIEW_MAX_SIDE = 256
#: Ray step as a multiple of the finest voxel spacing: still and preview.
STILL_SAMPLE_STEP = 1.0
PREVIEW_SAMPLE_STEP = 2.5
#: Pipelines kept alive per process (each holds the voxels, and on the CPU
#: gradient tables of about 1.5 bytes per voxel).
MAX_SCENES = 2
MAPPERS = ("auto", "gpu", "cpu")
_SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "swiftshader", "software rasterizer")

_LOCK = threading.RLock()
_scenes: OrderedDict[tuple, _Scene] = OrderedDict()
# An OpenGL context belongs to the thread that made it: rendering a window from another
# thread gives garbage (measured: a web server's request threads got striped noise). Every
# call that makes, uses or frees a context runs on this one thread.
_GL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vtk-gl")


def _on_gl_thread(function, *args):
    """Run `function(*args)` on the process's OpenGL thread and return its result."""
    if threading.current_thread().name.startswith("vtk-gl"):
        return function(*args)
    return _GL_THREAD.submit(function, *args).result()


@lru_cache(maxsize=1)
def opengl_renderer() -> str:
    """The OpenGL renderer string of an offscreen context, '' when none can be made."""
    return _on_gl_thread(_probe_renderer)


def _probe_renderer() -> str:
    with _LOCK:
        window = vtkRenderWindow()
        window.SetOffScreenRendering(1)
        window.SetSize(8, 8)
        window.AddRenderer(vtkRenderer())
        window.Render()
        if not window.SupportsOpenGL():
            return ""
        for line in window.ReportCapabilities().splitlines():
            if line.startswith("OpenGL renderer string:"):
                return line.split(":", 1)[1].strip()
        return "unknown"


def has_hardware_gpu() -> bool:
    """True when offscreen OpenGL runs on a GPU rather than a software rasteriser."""
    name = opengl_renderer().lower()
    return bool(name) and not any(word in name for word in _SOFTWARE_GL)


def choose_mapper(mapper: str | None = None) -> str:
    """Resolve ``auto`` / ``gpu`` / ``cpu`` (argument, else ``PACS_VR_MAPPER``) to gpu or cpu.

    Raises
    ------
    ValueError
        An unknown name, or ``gpu`` when no OpenGL context can be created.
    """
    choice = (mapper or os.environ.get("PACS_VR_MAPPER") or "auto").lower()
    if choice not in MAPPERS:
        raise ValueError(f"volume rendering mapper must be one of {', '.join(MAPPERS)}, "
                         f"got {choice!r}")
    if choice == "auto":
        return "gpu" if has_hardware_gpu() else "cpu"
    if choice == "gpu" and not opengl_renderer():
        raise ValueError("the GPU volume mapper needs OpenGL, and no context could be created")
    return choice


class _Scene:
    """One volume's VTK pipeline: image data, mapper, prop, renderer, window."""

    def __init__(self, voxels: np.ndarray, spacing: tuple[float, float, float], kind: str):
        self.voxels = np.ascontiguousarray(voxels)   # VTK borrows this memory
        slices, rows, columns = self.voxels.shape
        image = vtkImageData()
        image.SetDimensions(columns, rows, slices)
        image.SetSpacing(spacing[2], spacing[1], spacing[0])
        image.GetPointData().SetScalars(numpy_to_vtk(self.voxels.reshape(-1), deep=False))
        if kind == "gpu":
            mapper = vtkOpenGLGPUVolumeRayCastMapper()
        else:
            mapper = vtkFixedPointVolumeRayCastMapper()
            mapper.SetImageSampleDistance(1.0)
            mapper.SetNumberOfThreads(os.cpu_count() or 1)
        mapper.SetAutoAdjustSampleDistances(0)
        mapper.SetInputData(image)
        self.mapper = mapper
        self.property = vtkVolumeProperty()
        self.property.SetInterpolationTypeToLinear()
        self.prop = vtkVolume()
        self.prop.SetMapper(mapper)
        self.prop.SetProperty(self.property)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.renderer.AddVolume(self.prop)
        self.window = vtkRenderWindow()
        self.window.SetOffScreenRendering(1)
        self.window.AddRenderer(self.renderer)
        self.kind = kind

    def set_preset(self, preset: Preset, shade: bool) -> None:
        opacity = vtkPiecewiseFunction()
        for value, alpha in preset.opacity:
            opacity.AddPoint(value, alpha)
        colors = vtkColorTransferFunction()
        for value, red, green, blue in preset.colors:
            colors.AddRGBPoint(value, red, green, blue)
        self.property.SetScalarOpacity(opacity)
        self.property.SetColor(colors)
        self.property.SetShade(1 if shade else 0)
        self.property.SetAmbient(preset.ambient)
        self.property.SetDiffuse(preset.diffuse)
        self.property.SetSpecular(preset.specular)
        self.property.SetSpecularPower(preset.specular_power)
        if preset.blend is Blend.MAXIMUM:
            self.mapper.SetBlendModeToMaximumIntensity()
        else:
            self.mapper.SetBlendModeToComposite()

    def set_crop(self, planes: tuple[float, ...] | None) -> None:
        if planes is None:
            self.mapper.SetCropping(0)
            return
        self.mapper.SetCropping(1)
        self.mapper.SetCroppingRegionPlanes(*planes)
        self.mapper.SetCroppingRegionFlagsToSubVolume()

    def render(self, focal: np.ndarray, direction: np.ndarray, up: np.ndarray,
               parallel_scale: float, distance: float, size: tuple[int, int],
               sample_distance: float) -> np.ndarray:
        width, height = size
        self.window.SetSize(width, height)
        self.mapper.SetSampleDistance(sample_distance)
        camera = self.renderer.GetActiveCamera()
        camera.ParallelProjectionOn()
        camera.SetFocalPoint(*focal)
        camera.SetPosition(*(focal - direction * distance))
        camera.SetViewUp(*up)
        camera.SetParallelScale(parallel_scale)
        self.renderer.ResetCameraClippingRange()
        self.window.Render()
        pixels = vtkUnsignedCharArray()
        self.window.GetPixelData(0, 0, width - 1, height - 1, 0, pixels, 0)
        rgb = np.frombuffer(memoryview(pixels), dtype=np.uint8).reshape(height, width, 3)
        return rgb[::-1].copy()   # OpenGL rows run bottom-up


def _scene(cache: ByteLRUCache | None, volume: Volume, state: VRState, kind: str) -> _Scene:
    """The kept-alive pipeline for `volume` with the state's edits.

    Edits (table removal, cuts: seconds on a large volume) are applied
    outside the VTK lock, so other views keep rendering meanwhile.
    """
    key = (volume_identity(volume), state.edits_key(), kind)
    with _LOCK:
        scene = _scenes.get(key)
        if scene is not None:
            _scenes.move_to_end(key)
            return scene
    edit_cache = cache if cache is not None else ByteLRUCache(4 * volume.nbytes + 1)
    voxels = edited_voxels(edit_cache, volume, state)
    return _on_gl_thread(_keep_scene, key, voxels, volume.spacing, kind)


def _keep_scene(key: tuple, voxels: np.ndarray, spacing, kind: str) -> _Scene:
    with _LOCK:  # on the GL thread: an evicted scene frees its context here
        scene = _scenes.get(key)
        if scene is None:
            scene = _scenes[key] = _Scene(voxels, spacing, kind)
            while len(_scenes) > MAX_SCENES:
                _scenes.popitem(last=False)
        _scenes.move_to_end(key)
        return scene


def clear_scenes() -> None:
    """Drop every kept-alive pipeline (frees their voxels and GPU textures)."""
    _on_gl_thread(_clear_scenes)


def _clear_scenes() -> None:
    with _LOCK:
        _scenes.clear()


def crop_box_mm(volume: Volume, state: VRState) -> tuple[np.ndarray, np.ndarray] | None:
    """The state's crop box as patient (low, high) corners in mm, or None."""
    if state.crop_mm is not None:
        box = np.asarray(state.crop_mm, dtype=np.float64)
        return box[0::2], box[1::2]
    if state.crop_fraction is not None:
        low, high = volume_bounds(volume)
        box = np.asarray(state.crop_fraction, dtype=np.float64)
        return low + box[0::2] * (high - low), low + box[1::2] * (high - low)
    return None


def _index_frame(volume: Volume) -> np.ndarray:
    """Matrix taking patient vectors (row vectors) to VTK's index frame (mm)."""
    return np.linalg.inv(np.asarray(volume.directions, dtype=np.float64))


def _crop_planes(volume: Volume, state: VRState) -> tuple[float, ...] | None:
    box = crop_box_mm(volume, state)
    if box is None:
        return None
    low, high = box
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                        for z in (low[2], high[2])])
    local = (corners - volume.origin) @ _index_frame(volume)
    lo, hi = local.min(axis=0), local.max(axis=0)
    # An oblique volume gets the index-frame box around the patient box.
    return (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])


def render_volume(volume: Volume, state: VRState, *, cache: ByteLRUCache | None = None,
                  mapper: str | None = None) -> np.ndarray:
    """Volume render `volume` as the state asks, returning (height, width, 3) uint8 RGB.

    Parameters
    ----------
    volume : Volume
    state : VRState
    cache : ByteLRUCache, optional
        Where the edited voxels and edit masks are kept (table removal, cuts).
    mapper : {"auto", "gpu", "cpu"}, optional
        Ray caster; by default ``PACS_VR_MAPPER``, else auto (see the module docstring).

    Raises
    ------
    ValueError
        Unknown preset or mapper, or an empty crop box.
    """
    if min(volume.shape) < 2:
        raise ValueError(f"volume rendering needs at least 2 voxels along each axis, "
                         f"got a {volume.shape[0]}×{volume.shape[1]}×{volume.shape[2]} volume")
    if volume.voxels.dtype.kind not in "iuf":
        raise ValueError(f"volume rendering needs numeric voxels, got {volume.voxels.dtype}")
    kind = choose_mapper(mapper)
    preset = get_preset(state.preset).adjusted(state.shift, state.scale)
    shade = preset.shade if state.shade is None else state.shade
    frame: CameraFrame = place_camera(state.camera, volume)
    to_index = _index_frame(volume)
    mirrored = np.linalg.det(volume.directions) < 0
    width, height = state.width, state.height
    finest = float(min(volume.spacing))
    if state.render_quality == "preview":
        factor = min(1.0, PREVIEW_MAX_SIDE / max(width, height))
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        step = PREVIEW_SAMPLE_STEP * finest
    else:
        size, step = (width, height), STILL_SAMPLE_STEP * finest
    planes = _crop_planes(volume, state)
    if planes is not None and (planes[0] >= planes[1] or planes[2] >= planes[3]
                               or planes[4] >= planes[5]):
        raise ValueError("crop: the crop box is empty")
    scene = _scene(cache, volume, state, kind)

    def draw() -> np.ndarray:
        with _LOCK:
            scene.set_preset(preset, shade and preset.blend is Blend.COMPOSITE)
            scene.set_crop(planes)
            return scene.render((frame.focal - volume.origin) @ to_index,
                                frame.direction @ to_index, frame.up @ to_index,
                                frame.parallel_scale, 4.0 * frame.radius, size, step)

    rgb = _on_gl_thread(draw)
    if mirrored:
        rgb = rgb[:, ::-1]
    if size != (width, height):
        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(
            (width, height), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(rgb)


def prepare(volume: Volume, *, mapper: str | None = None) -> None:
    """Build `volume`'s pipeline ahead of the first view (seconds on a large CT).

    Renders one tiny shaded frame, which makes the CPU ray caster compute its
    space-leaping and gradient tables; later views of any preset start warm.
    """
    render_volume(volume, VRState(preset="ct_bone", width=8, height=8), mapper=mapper)


def vr_frame(cache: ByteLRUCache, volume_key: str, paths: list[str],
             query: str) -> tuple[bytes, str]:
    """Operation: volume render a series, returning ``(encoded image, media type)``.

    Parameters
    ----------
    cache : ByteLRUCache
        The process's render cache: the volume, edit masks and edited voxels live there.
    volume_key : str
        Cache identity of the series volume (tenant, series UID, content version).
    paths : list of str
        The series' stored Part 10 files, loaded on a cache miss.
    query : str
        :meth:`VRState.to_query` of the view. The mapper is this process's
        choice (``PACS_VR_MAPPER``), not part of the query.

    Raises
    ------
    ValueError
        Bad query (the message names the key), or a series that is not a
        volume (:class:`render_farm.slices.NotAVolume`, which says why).
    """
    state = VRState.from_query(query)
    volume = load_volume(cache, volume_key, paths)
    return encode(render_volume(volume, state, cache=cache), state.format, state.quality)
