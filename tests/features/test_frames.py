import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hf_av.features import (
    center_crop_frames,
    linspace_frame_indices,
    middle_frame_index,
    normalize_frames,
    opencv_seek_frame_indices,
    rescale_frames,
    resize_frames,
    shorter_side_size,
    to_channels_first,
    uniform_frame_indices,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.mark.parametrize("family", ["lavish", "dg-sct"])
def test_bicubic_192_bit_exact(fixtures_dir, family):
    data = load_file(fixtures_dir / "processors" / family / "processor_fixture.safetensors")
    meta = json.loads((fixtures_dir / "processors" / family / "processor_fixture.json").read_text())
    frames = rescale_frames(to_channels_first(data["frames_uint8"]))
    for antialias, key in ((False, "antialias=False"), (True, "antialias=True")):
        out = normalize_frames(resize_frames(frames, (192, 192), mode="bicubic", antialias=antialias), MEAN, STD)
        if family == "dg-sct":
            expected = meta["sha256_full_outputs"][f"pixel_values [10,3,192,192] float32 ({key})"]
            assert hashlib.sha256(out.numpy().tobytes()).hexdigest() == expected
    no_aa = normalize_frames(resize_frames(frames, (192, 192), mode="bicubic", antialias=False), MEAN, STD)
    assert (no_aa[[0, 9]] - data["pixel_values_frames_0_9"]).abs().max() == 0.0


def test_geometry_helpers():
    assert shorter_side_size(720, 1280, 224) == (224, 398)
    assert shorter_side_size(1280, 720, 224) == (398, 224)
    x = torch.rand(2, 3, 100, 160)
    assert resize_frames(x, 50).shape == (2, 3, 50, 80)
    assert resize_frames(x, (32, 48), mode="bicubic", antialias=False).shape == (2, 3, 32, 48)
    assert resize_frames(x, (100, 160)) is x
    crop = center_crop_frames(x, 64)
    assert crop.shape == (2, 3, 64, 64) and torch.equal(crop, x[..., 18:82, 48:112])
    assert center_crop_frames(torch.ones(3, 10, 10), 12).shape == (3, 12, 12)
    assert to_channels_first(np.zeros((4, 8, 8, 3), np.uint8)).shape == (4, 3, 8, 8)
    assert torch.equal(rescale_frames(torch.arange(256, dtype=torch.uint8)), torch.arange(256, dtype=torch.uint8) / 255)


@pytest.mark.parametrize("factor", [1 / 255, 1 / 127.5, 0.00392, 0.5])
def test_rescale_uint8_fast_path_equals_float64_product(factor):
    # uint8 frames may take a float32 division; it must give exactly the float64 product rounded once, for every
    # value and memory layout (channels-last frames as decoders return them).
    values = torch.arange(256, dtype=torch.uint8)
    frames = values.repeat(3 * 4 * 5)[: 4 * 5 * 3 * 12].reshape(12, 4, 5, 3)[..., :3].movedim(-1, -3)
    for x in (values, frames):
        expected = (x.to(torch.float64) * factor).to(torch.float32)
        out = rescale_frames(x, factor)
        assert out.dtype == torch.float32 and torch.equal(out, expected)


def test_sampling_rules():
    # CAV-MAE fixture clip: 132 frames at 25 fps -> targets 0,13,...,118, read at idx-1 by OpenCV.
    assert uniform_frame_indices(132, 10) == [0, 13, 26, 39, 52, 66, 79, 92, 105, 118]
    assert opencv_seek_frame_indices(132, 25.0) == [0, 12, 25, 38, 51, 65, 78, 91, 104, 117]
    assert opencv_seek_frame_indices(1000, 25.0)[-1] == 224  # capped at 10 s = 250 frames
    assert [i + 1 for i in linspace_frame_indices(44)] == [1, 5, 10, 15, 20, 24, 29, 34, 39, 44]
    assert middle_frame_index(10) == 5
    with pytest.raises(ValueError):
        uniform_frame_indices(0, 10)
