"""load_image and the generic index helpers."""

from __future__ import annotations

import numpy as np
import pytest

from hf_av.errors import MediaDecodingError
from hf_av.media import (
    center_indices,
    linspace_indices,
    load_image,
    middle_index,
    segment_indices,
    strided_indices,
    uniform_indices,
)

from .conftest import HEIGHT, WIDTH, read_pattern


def test_load_png_exact_and_jpeg_close(media):
    ref = media["image_array"]
    png = load_image(media["png"].path)
    assert png.dtype == np.uint8 and png.shape == (20, 30, 3)
    np.testing.assert_array_equal(png, ref)
    np.testing.assert_array_equal(load_image(media["png"].path.read_bytes()), ref)
    np.testing.assert_array_equal(load_image(media["png_rgba"].path), ref)
    jpg = load_image(media["jpg"].path)
    assert jpg.shape == (20, 30, 3)
    assert np.abs(jpg.astype(int) - ref).mean() < 4


def test_load_image_falls_back_to_pyav_for_video_files(media):
    frame = load_image(media["mp4"].path)
    assert frame.shape == (HEIGHT, WIDTH, 3) and read_pattern(frame[None])[0] == 0


def test_load_image_errors(media, tmp_path):
    with pytest.raises(MediaDecodingError, match="not a readable image"):
        load_image(media["garbage"].path.read_bytes())
    with pytest.raises(MediaDecodingError, match="not a readable image"):
        load_image(media["wav16"].path)


def test_sampling_helpers():
    np.testing.assert_array_equal(segment_indices(132, 10), [0, 13, 26, 39, 52, 66, 79, 92, 105, 118])
    np.testing.assert_array_equal(uniform_indices(10, 5), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(center_indices(10, 5), [1, 3, 5, 7, 9])
    np.testing.assert_array_equal(linspace_indices(44, 10) + 1, [1, 5, 10, 15, 20, 24, 29, 34, 39, 44])
    np.testing.assert_array_equal(linspace_indices(5, 3, rounding="round"), [0, 2, 4])
    np.testing.assert_array_equal(strided_indices(5, 4, stride=2, start=1), [1, 3, 0, 2])
    np.testing.assert_array_equal(strided_indices(5, 4, stride=2, start=1, wrap=False), [1, 3, 4, 4])
    assert middle_index(7) == 3
    for fn in (segment_indices, center_indices, linspace_indices, strided_indices):
        assert fn(8, 0).shape == (0,) and fn(8, 0).dtype == np.int64
        with pytest.raises(ValueError):
            fn(0, 3)
