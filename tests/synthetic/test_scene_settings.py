"""synth.scene.generate_scene reads its constants from SceneSettings: changing one changes the scene."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from synth.meshes import Material
from synth.scene import generate_scene, sample_drive_style
from synth.settings import STREET_KINDS, SceneSettings


def _scene(settings: SceneSettings, seed: int = 4):
    rng = np.random.default_rng(seed)
    style = sample_drive_style(rng)
    return style, generate_scene(style, rng, settings=settings)


def test_default_settings_are_the_default_argument():
    """Passing the defaults explicitly gives the very same scene as not passing them."""
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    a = generate_scene(sample_drive_style(rng_a), rng_a)
    b = generate_scene(sample_drive_style(rng_b), rng_b, settings=SceneSettings())
    np.testing.assert_array_equal(a.vertices_rect, b.vertices_rect)
    assert [o.hwl.tolist() for o in a.objects] == [o.hwl.tolist() for o in b.objects]


def test_zero_rates_give_a_street_without_objects():
    quiet = {k: replace(v, traffic_rate=0.0, pedestrian_rate=0.0, cyclist_rate=0.0) for k, v in STREET_KINDS.items()}
    settings = SceneSettings(street_kinds=quiet, parked_occupancy=(0.0, 0.0), crossing_pedestrian_p=0.0,
                             cross_traffic_rate=0.0, cross_pedestrian_rate=0.0)
    for seed in range(6):
        _, scene = _scene(SceneSettings(), seed)
        _, empty = _scene(settings, seed)
        assert len(empty.objects) == 0
        assert (empty.tri_instance == -1).all()
    assert len(scene.objects) > 0  # the defaults do place objects (seed 5)


def test_building_probability_and_extent_are_read():
    for seed in range(4):
        _, none = _scene(SceneSettings(building_p=0.0), seed)
        assert not (none.tri_material == Material.FACADE).any()
    _, scene = _scene(SceneSettings(), 0)
    assert (scene.tri_material == Material.FACADE).any()
    # the road slab starts extent_m[0] along the road (the cross street, if any, starts later)
    for start in (-80.0, -10.0):
        _, scene = _scene(SceneSettings(extent_m=(start, 260.0)), 0)
        road = scene.tri_material == Material.ROAD
        verts = scene.vertices_rect[scene.triangles[road].ravel()].astype(np.float64)
        level = verts @ scene.level_to_rect  # back to the level frame (rotation: inverse = transpose)
        assert np.isclose(scene.road.along(level).min(), start, atol=1e-3)
