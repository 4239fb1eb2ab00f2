"""Damaged real files: truncated or garbled encoded streams decode what is good, report the rest, never crash.

Every clean source is written by PyAV (``conftest.SOURCES``: 8 containers/codecs), then cut at 4 points and
garbled in 2 regions with 2 seeds. The contract checked on every case:

* the outcome is a ``DecodedMedia`` or a :class:`MediaDecodingError` (a ``ValueError``) naming the file, nothing else;
* the only warnings are :class:`MediaDecodingWarning` and they name the file;
* what is returned is well formed (uint8 ``[T, H, W, 3]`` frames, finite float32 ``[C, N]`` audio) and, for
  truncations, correct: the frames are the clip's first frames in order (their bars encode their index);
* an error only when nothing is usable: cuts that keep >= 60 % of the bytes always decode (below that, the
  small test files can be cut inside the header: PyAV's AVI header alone is ~8 KB of a 29 KB file);
* a cut that loses >= 40 % of a file whose container states its length is reported (warning).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_av import CavMaeProcessor, DgSctProcessor, LavishProcessor, VattProcessor
from hf_av.errors import MediaDecodingError
from hf_av.media import MediaDecodingWarning, decode_media
from tests.media.conftest import read_pattern

from .conftest import SOURCES, corrupt, decode_recording, truncate

TRUNCATIONS = (0.9, 0.6, 0.3, 0.1)
CORRUPTIONS = (("middle", 0), ("middle", 1), ("end", 0), ("end", 1))
# Containers that do not state their length (MPEG-TS) or whose length ffmpeg derives from the file size (WAV):
# a clean cut is indistinguishable from a shorter file, so it cannot be reported.
LENGTH_NOT_STATED = {"ts_h264_aac", "wav_s16"}
EXPECTED_SIZE = (48, 64)


def _check_wellformed(out, name):
    assert out.frames is not None or out.audio is not None
    if out.frames is not None and len(out.frames):
        assert out.frames.dtype == np.uint8 and out.frames.ndim == 4 and out.frames.shape[1:] == (*EXPECTED_SIZE, 3)
    if out.audio is not None:
        assert out.audio.dtype == np.float32 and out.audio.ndim == 2 and out.audio.shape[1] > 0
        assert np.isfinite(out.audio).all(), name


def _check_warnings(caught, name):
    ours = [w for w in caught if issubclass(w.category, UserWarning)]
    assert all(issubclass(w.category, MediaDecodingWarning) for w in ours), [str(w.message) for w in ours]
    assert all(name in str(w.message) for w in ours)
    return bool(ours)


@pytest.mark.parametrize("fraction", TRUNCATIONS)
@pytest.mark.parametrize("key", sorted(SOURCES))
def test_truncated_stream(clean_sources, tmp_path, key, fraction):
    src = clean_sources[key].path
    bad = truncate(src, tmp_path / f"cut{int(fraction * 100)}_{src.name}", fraction)
    out, error, caught = decode_recording(decode_media, bad)
    warned = _check_warnings(caught, bad.name)
    if error is not None:
        assert isinstance(error, MediaDecodingError) and bad.name in str(error)
        assert fraction < 0.6, f"{bad.name}: {fraction:.0%} of the bytes are there but nothing decoded: {error}"
        return
    _check_wellformed(out, bad.name)
    if out.frames is not None and len(out.frames):
        # What is decoded is right: the first frames of the clip, in order, none invented.
        np.testing.assert_array_equal(read_pattern(out.frames), np.arange(len(out.frames)))
        assert len(out.frames) <= clean_sources[key].num_frames
    if fraction <= 0.6 and key not in LENGTH_NOT_STATED:
        assert warned and out.warnings, f"{bad.name}: {fraction:.0%} cut decoded without a report"


@pytest.mark.parametrize("region,seed", CORRUPTIONS)
@pytest.mark.parametrize("key", sorted(SOURCES))
def test_garbled_stream(clean_sources, tmp_path, key, region, seed):
    src = clean_sources[key].path
    bad = corrupt(src, tmp_path / f"bad_{region}{seed}_{src.name}", region, seed=seed)
    out, error, caught = decode_recording(decode_media, bad)
    warned = _check_warnings(caught, bad.name)
    if error is not None:
        assert isinstance(error, MediaDecodingError) and bad.name in str(error)
        return
    _check_wellformed(out, bad.name)
    assert warned == bool(out.warnings)  # what is reported is also on the result


@pytest.mark.parametrize("key", ["mkv_h264_aac", "webm_vp9_opus", "avi_mpeg4_mp3", "mp4_faststart"])
def test_cav_mae_processor_on_truncated_file(clean_sources, tmp_path, key):
    # The processor's frame choice adapts to the frames that are really there and the report reaches the caller.
    bad = truncate(clean_sources[key].path, tmp_path / f"half_{key}", 0.5)
    with pytest.warns(MediaDecodingWarning, match=f"half_{key}"):
        out = CavMaeProcessor()(videos=str(bad), return_tensors="pt")
    assert out["input_values"].shape == (1, 1024, 128) and out["pixel_values"].shape == (1, 3, 224, 224)
    assert torch.isfinite(out["input_values"]).all() and torch.isfinite(out["pixel_values"]).all()


@pytest.mark.parametrize(
    "processor_class,shapes",
    [
        (LavishProcessor, {"input_values": (1, 10, 192, 192), "pixel_values": (1, 10, 3, 192, 192)}),
        (DgSctProcessor, {"input_values": (1, 10, 1001, 64), "pixel_values": (1, 10, 3, 192, 192)}),
        (VattProcessor, {"input_values": (1, 1, 153600), "pixel_values": (1, 1, 32, 3, 224, 224)}),
    ],
    ids=["lavish", "dg_sct", "vatt"],
)
def test_other_processors_on_truncated_file(clean_sources, tmp_path, processor_class, shapes):
    bad = truncate(clean_sources["mkv_h264_aac"].path, tmp_path / "half.mkv", 0.5)
    with pytest.warns(MediaDecodingWarning, match="half.mkv"):
        out = processor_class()(videos=str(bad), return_tensors="pt")
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes
    assert all(torch.isfinite(v).all() for v in out.values())


def test_processor_refuses_file_with_nothing_usable(clean_sources, tmp_path):
    bad = truncate(clean_sources["avi_mpeg4_mp3"].path, tmp_path / "stub.avi", 0.02)
    with pytest.raises(MediaDecodingError, match="stub.avi"):
        CavMaeProcessor()(videos=str(bad))
