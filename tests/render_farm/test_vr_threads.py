"""Volume rendering from many threads (a web server's request threads) gives the same pictures."""
from __future__ import annotations

import threading

import numpy as np

from render_farm.cache import ByteLRUCache
from render_farm.volume import Volume
from render_farm.vr import render_volume
from render_farm.vr_state import VRState


def _volume() -> Volume:
    voxels = np.full((40, 64, 64), -1000, np.int16)
    voxels[8:32, 16:48, 16:48] = 40      # soft tissue
    voxels[12:28, 28:36, 20:44] = 1200   # a bone bar
    return Volume(voxels, np.zeros(3), (2.0, 1.0, 1.0), np.eye(3), key="threads")


def _in_thread(function):
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("v", function()))
    thread.start()
    thread.join(60)
    return out["v"]


def test_renders_from_other_threads_match_and_resize_cleanly():
    volume, cache = _volume(), ByteLRUCache(1 << 28)
    sizes = [(320, 320), (400, 225), (225, 400), (400, 225)]
    threaded = [_in_thread(lambda w=w, h=h: render_volume(volume, VRState(width=w, height=h),
                                                          cache=cache)) for w, h in sizes]
    direct = [render_volume(volume, VRState(width=w, height=h), cache=cache) for w, h in sizes]
    for (w, h), a, b in zip(sizes, threaded, direct):
        assert a.shape == b.shape == (h, w, 3)
        assert a.max() > 100  # the bone is there, not a blank or striped buffer
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
