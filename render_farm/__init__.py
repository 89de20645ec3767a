"""The render farm: DICOM instances in, viewport images out.

Pure numpy/Pillow (and, for 3-D, VTK) code with no knowledge of the web app:
``app/services`` is its only caller. A render is a pure function of an
instance and a :class:`ViewState`::

    cache = ByteLRUCache(2 * 1024**3)
    source = load_source(cache, sop_instance_uid, path)
    body, media_type = render(source, ViewState.from_query("wc=40&ww=400&w=512&h=512"))
"""
from render_farm.attributes import DisplayAttributes, UnsupportedImage, Window, read_attributes
from render_farm.cache import ByteLRUCache, CacheStats
from render_farm.colormaps import Colormap, apply_colormap, colorize, colormap_lut
from render_farm.decode import FrameSource, load_source, open_source
from render_farm.encode import ImageFormat, encode, encode_gif
from render_farm.overlays import OverlayPlane, burn_in, read_overlays
from render_farm.pipeline import (
    GrayscaleParams, Lut, Photometric, PresentationShape, WindowFunction, apply_grayscale,
    apply_palette, default_window, grayscale, grayscale_lut, is_inverse, modality_lut,
    palette_lut, presentation, rgb_to_uint8, to_uint8, voi_lut, window, ybr_to_rgb,
)
from render_farm.render import display_pixels, grayscale_params, render, render_array, thumbnail
from render_farm.transform import apply_filters, apply_geometry
from render_farm.viewport import FitMode, Geometry, ViewState, display_to_image, viewport_geometry

__all__ = [
    "ByteLRUCache", "CacheStats", "Colormap", "DisplayAttributes", "FitMode", "FrameSource",
    "Geometry", "GrayscaleParams", "ImageFormat", "Lut", "OverlayPlane", "Photometric",
    "PresentationShape", "UnsupportedImage", "ViewState", "Window", "WindowFunction",
    "apply_colormap", "apply_filters", "apply_geometry", "apply_grayscale", "apply_palette",
    "burn_in", "colorize", "colormap_lut", "default_window", "display_pixels", "display_to_image",
    "encode", "encode_gif", "grayscale", "grayscale_lut", "grayscale_params", "is_inverse",
    "load_source", "modality_lut", "open_source", "palette_lut", "presentation",
    "read_attributes", "read_overlays", "render", "render_array", "rgb_to_uint8", "thumbnail",
    "to_uint8", "viewport_geometry", "voi_lut", "window", "ybr_to_rgb",
]
