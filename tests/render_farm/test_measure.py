"""Measurements against known truth: lengths, angles, regions and probes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from render_farm import measure
from render_farm.measure import Spacing
from render_farm.pipeline import Lut

ANISO = Spacing(row=0.8, column=0.5)


def test_length_uses_row_and_column_spacing():
    # 40 columns × 0.5 mm across, 30 rows × 0.8 mm down: a 20 × 24 mm right triangle.
    assert measure.length((10, 10), (50, 10), ANISO) == pytest.approx(20.0)
    assert measure.length((10, 10), (10, 40), ANISO) == pytest.approx(24.0)
    assert measure.length((10, 10), (50, 40), ANISO) == pytest.approx(math.hypot(20, 24))


def test_uncalibrated_spacing_measures_pixels():
    spacing = Spacing.of(None)
    assert not spacing.calibrated
    assert measure.length((0, 0), (3, 4), spacing) == pytest.approx(5.0)
    assert Spacing.of((0.0, 0.5)).calibrated is False
    assert Spacing.of([0.7, 0.6]) == Spacing(0.7, 0.6, True)


def test_polyline_is_the_sum_of_its_segments():
    points = [(0, 0), (40, 0), (40, 25), (0, 25)]
    assert measure.polyline_length(points, ANISO) == pytest.approx(20 + 20 + 20)
    with pytest.raises(ValueError):
        measure.polyline_length([(1, 1)], ANISO)


def test_right_angle_in_physical_space():
    # In pixels the arms (10, 0) and (0, 10) are perpendicular whatever the spacing.
    assert measure.angle((20, 10), (10, 10), (10, 20), ANISO) == pytest.approx(90.0)
    # 45° in physical space needs equal mm, not equal pixels: 16 columns × 0.5 = 10 rows × 0.8.
    assert measure.angle((26, 10), (10, 10), (26, 20), ANISO) == pytest.approx(45.0)
    assert measure.angle((0, 0), (5, 0), (10, 0), ANISO) == pytest.approx(180.0)
    with pytest.raises(ValueError):
        measure.angle((1, 1), (1, 1), (2, 2), ANISO)


def test_cobb_angle_is_acute_whatever_the_drawing_direction():
    square = Spacing(1.0, 1.0)
    upper = [(0, 0), (100, 0)]
    tilted = [(0, 0), (100, 100 * math.tan(math.radians(30)))]
    assert measure.cobb_angle(upper, tilted, square) == pytest.approx(30.0)
    reversed_line = list(reversed(tilted))  # drawn right to left: 150° between vectors
    assert measure.cobb_angle(upper, reversed_line, square) == pytest.approx(30.0)
    assert measure.cobb_angle(upper, [(5, 5), (5, 50)], square) == pytest.approx(90.0)


def test_cardiothoracic_ratio():
    heart = measure.length((30, 50), (80, 50), ANISO)
    thorax = measure.length((10, 50), (110, 50), ANISO)
    assert measure.ratio(heart, thorax) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        measure.ratio(1.0, 0.0)


def _values() -> np.ndarray:
    return np.random.default_rng(7).normal(40.0, 12.0, size=(64, 80))


def test_rectangle_stats_equal_numpy_on_the_same_pixels():
    values = _values()
    # Corners on pixel edges: columns 10..29 and rows 5..19 have their centres inside.
    stats = measure.rectangle_stats(values, (10, 5), (30, 20), ANISO)
    region = values[5:20, 10:30]
    assert stats.pixels == region.size
    assert stats.mean == pytest.approx(region.mean())
    assert stats.sd == pytest.approx(region.std())
    assert (stats.min, stats.max) == (region.min(), region.max())
    assert stats.area == pytest.approx(20 * 0.5 * 15 * 0.8)
    # Drawn from the other corner: the same region.
    assert measure.rectangle_stats(values, (30, 20), (10, 5), ANISO) == stats


def test_ellipse_stats_and_area():
    values = _values()
    stats = measure.ellipse_stats(values, (20, 10), (60, 50), Spacing(0.5, 0.5))
    cy, cx = np.mgrid[0:64, 0:80] + 0.5
    inside = ((cx - 40) / 20) ** 2 + ((cy - 30) / 20) ** 2 <= 1
    assert stats.pixels == inside.sum()
    assert stats.mean == pytest.approx(values[inside].mean())
    assert stats.sd == pytest.approx(values[inside].std())
    assert stats.area == pytest.approx(math.pi * 10 * 10)
    # A pixel count close to the analytic area (in pixels: π·20²).
    assert stats.pixels == pytest.approx(math.pi * 400, rel=0.02)


def test_polygon_stats_of_a_triangle():
    values = np.arange(100.0).reshape(10, 10)
    triangle = [(0, 0), (10, 0), (0, 10)]
    stats = measure.polygon_stats(values, triangle, Spacing(2.0, 2.0))
    cy, cx = np.mgrid[0:10, 0:10] + 0.5
    inside = cx + cy < 10
    assert stats.pixels == inside.sum() == 45
    assert stats.mean == pytest.approx(values[inside].mean())
    assert stats.area == pytest.approx(0.5 * 20 * 20)
    # A rectangle drawn as a freehand outline selects what the rectangle tool selects.
    outline = [(10, 5), (30, 5), (30, 20), (10, 20)]
    big = _values()
    assert measure.polygon_stats(big, outline, ANISO).mean == pytest.approx(
        measure.rectangle_stats(big, (10, 5), (30, 20), ANISO).mean)


def test_region_outside_the_image_is_empty_not_an_error():
    stats = measure.rectangle_stats(_values(), (200, 200), (220, 230), ANISO)
    assert stats.pixels == 0 and math.isnan(stats.mean)
    with pytest.raises(ValueError):
        measure.window_for(stats)


def test_probe_value_and_neighbourhood():
    values = np.arange(100.0).reshape(10, 10)
    found = measure.probe(values, (4.7, 3.2), radius=1)
    assert (found.column, found.row, found.value) == (4, 3, 34.0)
    assert (found.min, found.max, found.mean, found.size) == (23.0, 45.0, 34.0, 3)
    corner = measure.probe(values, (0.1, 0.1), radius=2)  # clipped at the edge
    assert (corner.min, corner.max) == (0.0, 22.0)
    with pytest.raises(ValueError):
        measure.probe(values, (10.0, 0.0))


def test_modality_values_rescale_lut_and_colour():
    stored = np.array([[0, 1024, 2048]], dtype=np.uint16)
    assert measure.modality_values(stored, 1.0, -1024.0).tolist() == [[-1024.0, 0.0, 1024.0]]
    lut = Lut.from_values(0, 16, np.array([5, 6, 7]))
    assert measure.modality_values(np.array([[0, 2, 9]]), lut=lut).tolist() == [[5.0, 7.0, 7.0]]
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 1] = 255
    assert measure.modality_values(rgb)[0].tolist() == pytest.approx([0.0, 255.0])


def test_window_from_a_region():
    values = np.array([[-100.0, 0.0], [50.0, 300.0]])
    stats = measure.rectangle_stats(values, (0, 0), (2, 2), Spacing())
    assert measure.window_for(stats) == (100.0, 400.0)


def test_bad_points_are_rejected():
    for points in ([(0, float("nan"))], [(1, 2, 3)], "xy"):
        with pytest.raises(ValueError):
            measure.to_mm(points, ANISO)
