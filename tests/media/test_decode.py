"""decode_media / probe_media on generated files: frame order, formats, windows, selection, bytes input."""

from __future__ import annotations

import io

import numpy as np
import pytest

from hf_av.media import DecodedMedia, MediaDecodingWarning, decode_media, probe_media

from .conftest import HEIGHT, WIDTH, read_pattern

VIDEO_KEYS = ["mp4", "mp4_51", "webm", "avi", "mkv", "mkv_offset", "video_only"]


@pytest.mark.parametrize("key", VIDEO_KEYS)
def test_all_frames_in_order(media, key):
    clip = media[key]
    out = decode_media(clip.path)
    assert isinstance(out, DecodedMedia)
    assert out.frames.dtype == np.uint8 and out.frames.shape == (clip.num_frames, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(clip.num_frames))
    np.testing.assert_array_equal(out.frame_indices, np.arange(clip.num_frames))
    assert out.frame_indices.dtype == np.int64 and out.frame_timestamps.dtype == np.float64
    assert out.num_video_frames == clip.num_frames
    assert out.video_fps == pytest.approx(clip.fps)
    assert out.frame_timestamps[0] == pytest.approx(0.0)
    assert np.all(np.diff(out.frame_timestamps) > 0)
    assert out.source == str(clip.path)
    if key != "avi":  # the AVI muxer leaves an empty slot after frame 0 (real timestamps are kept)
        np.testing.assert_allclose(out.frame_timestamps, np.arange(clip.num_frames) / clip.fps, atol=1e-6)
    if clip.sampling_rate:
        assert out.sampling_rate == clip.sampling_rate
        assert out.audio.dtype == np.float32 and out.audio.ndim == 2
        assert out.audio.shape[0] == {"mono": 1, "stereo": 2, "5.1": 6}[clip.layout]
        assert abs(out.audio.shape[1] / clip.sampling_rate - clip.duration) < 0.1
    else:
        assert out.audio is None and out.sampling_rate is None


def test_nonzero_start_pts_is_relative(media):
    clip = media["mkv_offset"]  # all streams start at 10 s
    info = probe_media(clip.path)
    assert info.start_time == pytest.approx(10.0)
    assert info.video.start_time == pytest.approx(0.0)
    assert info.duration == pytest.approx(1.0, abs=0.05)
    out = decode_media(clip.path, start_time=0.4, end_time=0.6)
    np.testing.assert_array_equal(read_pattern(out.frames), [10, 11, 12, 13, 14])
    np.testing.assert_allclose(out.frame_timestamps, [0.4, 0.44, 0.48, 0.52, 0.56], atol=1e-9)
    assert out.audio_start_time == pytest.approx(0.4)
    assert out.audio.shape == (1, 3200)


def test_probe(media):
    info = probe_media(media["mp4"].path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.fps, info.num_frames) == (WIDTH, HEIGHT, 25.0, 50)
    assert info.video.num_frames_exact
    assert (info.sampling_rate, info.audio_channels, info.audio_codec) == (48000, 2, "aac")
    assert info.duration == pytest.approx(2.0, abs=0.03)
    # Matroska/WebM carry no frame count: counted by demuxing.
    webm = probe_media(media["webm"].path)
    assert webm.num_frames == 20 and webm.video.num_frames_exact and webm.video_codec == "vp9"
    assert webm.audio_codec == "opus" and webm.sampling_rate == 48000
    audio_only = probe_media(media["flac"].path)
    assert not audio_only.has_video and audio_only.video is None and audio_only.num_frames is None
    assert (audio_only.sampling_rate, audio_only.audio_channels) == (22050, 2)
    assert audio_only.audio.duration == pytest.approx(1.0)
    video_only = probe_media(media["video_only"].path)
    assert video_only.has_video and not video_only.has_audio and video_only.num_frames == 30


def test_frame_indices_list_keeps_order_and_repeats(media):
    out = decode_media(media["mp4"].path, frame_indices=[7, 3, 3, 49, 0], audio=False)
    np.testing.assert_array_equal(read_pattern(out.frames), [7, 3, 3, 49, 0])
    np.testing.assert_array_equal(out.frame_indices, [7, 3, 3, 49, 0])
    np.testing.assert_allclose(out.frame_timestamps, np.array([7, 3, 3, 49, 0]) / 25, atol=1e-9)
    assert out.num_video_frames == 50 and out.audio is None
    empty = decode_media(media["mp4"].path, frame_indices=[], audio=False)
    assert empty.frames.shape == (0, HEIGHT, WIDTH, 3)


def test_frame_indices_callable_sees_sequence_info(media):
    seen = []

    def pick(info):
        seen.append(info)
        return np.linspace(0, info.num_frames - 1, 4).astype(int)

    out = decode_media(media["webm"].path, frame_indices=pick)  # webm: count from a demux-only scan
    assert seen[0].num_frames == 20 and seen[0].fps == pytest.approx(10) and seen[0].width == WIDTH
    np.testing.assert_array_equal(read_pattern(out.frames), [0, 6, 12, 19])
    assert out.audio is not None and out.audio.shape[0] == 2


def test_window_native(media):
    out = decode_media(media["mp4"].path, start_time=0.5, end_time=1.0)
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(13, 25))  # t = 0.52 ... 0.96
    np.testing.assert_array_equal(out.frame_indices, np.arange(12))  # indices count from the window start
    np.testing.assert_array_equal(out.source_frame_indices, np.arange(13, 25))
    assert out.num_video_frames == 12
    assert out.audio.shape == (2, 24000) and out.audio_start_time == pytest.approx(0.5)
    full = decode_media(media["mp4"].path, video=False)
    np.testing.assert_allclose(out.audio, full.audio[:, 24000:48000], atol=1e-6)


def test_window_with_callable_and_rate(media):
    infos = []
    out = decode_media(media["mp4"].path, start_time=1.0, frame_rate=10, audio=False,
                       frame_indices=lambda info: infos.append(info) or [0, info.num_frames - 1])
    assert infos[0].num_frames == 10  # outputs k = 10 ... 19 of the 10 fps sequence
    np.testing.assert_allclose(out.frame_timestamps, [1.0, 1.9])
    np.testing.assert_array_equal(read_pattern(out.frames), [_fps_source(10, 25, 10), _fps_source(19, 25, 10)])


def test_bytes_and_file_objects(media):
    path = media["webm"].path
    ref = decode_media(path)
    data = path.read_bytes()
    for src, name in ((data, "<bytes>"), (bytearray(data), "<bytes>"), (io.BytesIO(data), "<file-like>")):
        out = decode_media(src, frame_indices=lambda info: range(info.num_frames))
        assert out.source == name
        np.testing.assert_array_equal(out.frames, ref.frames)
        np.testing.assert_array_equal(out.audio, ref.audio)
    named = decode_media(data, name="clip.webm", video=False)
    assert named.source == "clip.webm"
    with open(path, "rb") as f:
        assert decode_media(f, video=False).audio.shape == ref.audio.shape
    assert probe_media(data).num_frames == 20


def test_only_selected_frames_are_converted(media, monkeypatch):
    import av

    calls = []
    original = av.VideoFrame.to_ndarray

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "to_ndarray", spy)
    decode_media(media["mp4_132"].path, frame_indices=[5, 100, 100], audio=False)
    assert len(calls) == 2


def test_audio_only_request_on_video_file(media):
    out = decode_media(media["mp4"].path, video=False)
    assert out.frames is None and out.frame_indices is None and out.num_video_frames is None
    assert out.audio.shape == (2, 96000)


def test_decoding_does_not_warn_on_clean_files(media, recwarn):
    for key in VIDEO_KEYS + ["flac", "mp3", "ogg", "m4a", "wav16", "wav24"]:
        decode_media(media[key].path)
    assert not [w for w in recwarn if issubclass(w.category, MediaDecodingWarning)]


def _fps_source(k: int, native_fps: int, rate: int) -> int:
    """Reference rule of ffmpeg's fps filter on a constant-rate clip starting at 0 (integer arithmetic):
    output k shows the last native frame i with round_half_up(i * rate / native_fps) <= k."""
    i = 0
    while (2 * (i + 1) * rate + native_fps) // (2 * native_fps) <= k:
        i += 1
    return i
