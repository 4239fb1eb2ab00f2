"""Every failure is a MediaDecodingError naming the file and the problem; partial decodes warn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hf_av.errors import MediaDecodingError
from hf_av.media import MediaDecodingWarning, decode_media, load_audio, load_image, probe_media

from .conftest import read_pattern


def test_is_value_error():
    assert issubclass(MediaDecodingError, ValueError)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    for fn in (decode_media, probe_media, load_audio, load_image):
        with pytest.raises(MediaDecodingError, match="nope.mp4.*not found"):
            fn(missing)


def test_directory_and_empty_inputs(tmp_path):
    with pytest.raises(MediaDecodingError, match="directory"):
        decode_media(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaDecodingError, match="empty"):
        decode_media(empty)
    with pytest.raises(MediaDecodingError, match="<bytes>"):
        decode_media(b"")
    with pytest.raises(MediaDecodingError, match="unsupported media source"):
        decode_media(12345)


def test_garbage(media):
    path = media["garbage"].path
    with pytest.raises(MediaDecodingError, match="garbage.mp4.*could not be opened"):
        decode_media(path)
    with pytest.raises(MediaDecodingError, match="garbage.mp4"):
        probe_media(path)
    with pytest.raises(MediaDecodingError, match="<bytes>"):
        decode_media(path.read_bytes())
    with pytest.raises(MediaDecodingError, match="not a readable image"):
        load_image(path)


def test_truncated_mp4_without_index_is_an_error(media):
    # PyAV writes the moov index at the end: half a file has no index, nothing can be decoded.
    with pytest.raises(MediaDecodingError, match="half_h264_aac_stereo48k.mp4"):
        decode_media(media["mp4_trunc"].path)


def test_truncated_mkv_decodes_what_is_there_and_warns(media):
    with pytest.warns(MediaDecodingWarning, match="half_h264_aac_long.mkv.*truncated"):
        out = decode_media(media["mkv_trunc"].path)
    n = out.frames.shape[0]
    assert 5 < n < 50
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(n))
    assert out.audio is not None and 0 < out.audio.shape[1] < 2 * 48000
    assert out.warnings


def test_truncated_faststart_mp4_decodes_what_is_there_and_warns(media):
    # Index at the front (movflags=faststart): it promises 50 frames, half of the data is there.
    with pytest.warns(MediaDecodingWarning, match="half_faststart.mp4.*lists 50 frames"):
        out = decode_media(media["mp4_fast_trunc"].path)
    n = out.frames.shape[0]
    assert 5 < n < 50
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(n))


def test_truncated_mkv_missing_requested_frames_warns(media):
    with pytest.warns(MediaDecodingWarning, match="not available"):
        out = decode_media(media["mkv_trunc"].path, frame_indices=[0, 45], audio=False)
    np.testing.assert_array_equal(out.frame_indices, [0])


def test_require_audio_and_video(media):
    with pytest.raises(MediaDecodingError, match="h264_only.mp4: no audio stream.*require_audio.*1 video / 0 audio"):
        decode_media(media["video_only"].path, require_audio=True)
    with pytest.raises(MediaDecodingError, match="h264_only.mp4: no audio stream"):
        load_audio(media["video_only"].path)
    with pytest.raises(MediaDecodingError, match="tone.flac: no video stream"):
        decode_media(media["flac"].path, require_video=True)
    # Not required: the missing modality is None.
    out = decode_media(media["video_only"].path)
    assert out.audio is None and out.frames.shape[0] == 30
    assert decode_media(media["flac"].path).frames is None


def test_zero_length_audio(media):
    with pytest.raises(MediaDecodingError, match="empty.wav.*zero samples"):
        load_audio(media["wav_empty"].path)
    with pytest.raises(MediaDecodingError, match="empty.wav.*zero samples"):
        decode_media(media["wav_empty"].path)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"sampling_rate": -16000}, "sampling_rate must be a positive integer"),
        ({"sampling_rate": 0}, "sampling_rate"),
        ({"sampling_rate": 16000.5}, "sampling_rate"),
        ({"frame_rate": 0}, "invalid frame_rate"),
        ({"frame_rate": -8}, "invalid frame_rate"),
        ({"frame_rate": float("nan")}, "invalid frame_rate"),
        ({"frame_rate_mode": "nearest"}, "frame_rate_mode"),
        ({"audio_channels": "left"}, "audio_channels"),
        ({"start_time": -1.0}, "start_time"),
        ({"start_time": 1.0, "end_time": 0.5}, "end_time"),
        ({"video": False, "audio": False}, "nothing to decode"),
        ({"frame_indices": [0, -1]}, "frame_indices must be >= 0"),
        ({"frame_indices": [0.5]}, "frame_indices must be integers"),
        ({"frame_indices": "012"}, "frame_indices"),
        ({"frame_indices": [0, 50]}, r"frame indices \[50\] not available.*50 frames"),
        ({"frame_indices": lambda info: 1 / 0}, "callable failed"),
        ({"backend": "torchcodec-not-registered"}, "unknown media backend"),
    ],
)
def test_invalid_arguments(media, kwargs, pattern):
    with pytest.raises(MediaDecodingError, match=pattern):
        decode_media(media["mp4"].path, **kwargs)


def test_no_raw_library_errors_escape(media, tmp_path):
    # Valid header, corrupted payload: only hf_av's own error / warning types may surface.
    data = bytearray(media["webm"].path.read_bytes())
    rng = np.random.default_rng(1)
    for pos in rng.integers(400, len(data), 200):
        data[pos] = rng.integers(0, 256)
    bad = tmp_path / "corrupt.webm"
    bad.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = decode_media(bad)
        except MediaDecodingError as exc:
            assert "corrupt.webm" in str(exc)
        else:
            assert out.frames is not None or out.audio is not None
    assert all(issubclass(w.category, MediaDecodingWarning) for w in caught)
    assert any("corrupt.webm" in str(w.message) for w in caught)
