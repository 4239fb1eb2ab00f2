"""frame_rate emulation: ffmpeg's fps filter and the command line's -r output option."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hf_av.media import decode_media
from hf_av.media.frame_rate import count_output_frames, parse_rate, round_half_away

from .conftest import read_pattern
from .test_decode import _fps_source

# ffmpeg 5.1.9, `ffmpeg -i bigbuckbunny_320x180.mp4 -y -r 8 %04d.jpg` (132 frames at 25 fps, video + audio):
# 44 images; images 1, 5, 10, 15, 20, 24, 29, 34, 39, 44 show these native frames (checked against the
# LAVisH fixture's jpgs, tests/fixtures/processors/lavish).
CLI_R8_COUNT = 44
CLI_R8_POSITIONS = [0, 4, 9, 14, 19, 23, 28, 33, 38, 43]
CLI_R8_SOURCES = [0, 9, 24, 40, 55, 68, 84, 99, 115, 130]


@pytest.mark.parametrize("rate", [10, 8, 30, 12.5])
def test_fps_filter_matches_reference_rule(media, rate):
    clip = media["mp4"]  # 50 frames at 25 fps
    out = decode_media(clip.path, frame_rate=rate, audio=False)
    r = Fraction(rate)
    expected_count = round_half_away(Fraction(clip.num_frames, clip.fps) * r)
    assert out.num_video_frames == expected_count == out.frames.shape[0]
    assert out.video_fps == pytest.approx(float(rate))
    np.testing.assert_array_equal(out.frame_indices, np.arange(expected_count))
    np.testing.assert_allclose(out.frame_timestamps, np.arange(expected_count) / float(rate))
    if r.denominator == 1:
        expected = [_fps_source(k, clip.fps, int(rate)) for k in range(expected_count)]
        np.testing.assert_array_equal(read_pattern(out.frames), expected)
        np.testing.assert_array_equal(out.source_frame_indices, expected)
    else:
        np.testing.assert_array_equal(read_pattern(out.frames), out.source_frame_indices)


def test_fps_filter_native_rate_is_identity(media):
    out = decode_media(media["mp4"].path, frame_rate=25, audio=False)
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(50))


def test_cli_rate_matches_ffmpeg(media):
    clip = media["mp4_132"]
    seen = []
    out = decode_media(clip.path, frame_rate=8, frame_rate_mode="cli_rate", audio=False,
                       frame_indices=lambda info: seen.append(info.num_frames) or CLI_R8_POSITIONS)
    assert seen == [CLI_R8_COUNT] and out.num_video_frames == CLI_R8_COUNT
    np.testing.assert_array_equal(read_pattern(out.frames), CLI_R8_SOURCES)
    full = decode_media(clip.path, frame_rate=8, frame_rate_mode="cli_rate", audio=False)
    assert full.frames.shape[0] == CLI_R8_COUNT
    # The fps filter drops the "ahead" frames at the start and gives round(5.28 * 8) = 42 frames.
    assert decode_media(clip.path, frame_rate=8, audio=False, frame_indices=[]).num_video_frames == 42


def test_cli_rate_counts_without_decoding():
    times = [Fraction(i, 25) for i in range(132)]
    assert count_output_frames("cli_rate", Fraction(8), times, [None] * 132, Fraction(132, 25), Fraction(25)) == 44
    assert count_output_frames("fps_filter", Fraction(8), times, [None] * 132, Fraction(132, 25)) == 42


def test_upsampling_repeats_frames(media):
    out = decode_media(media["webm"].path, frame_rate=25, audio=False)  # 20 frames at 10 fps -> 50
    assert out.frames.shape[0] == 50
    src = read_pattern(out.frames)
    np.testing.assert_array_equal(src, [_fps_source(k, 10, 25) for k in range(50)])
    assert set(src) == set(range(20))


def test_parse_rate():
    assert parse_rate("30000/1001") == Fraction(30000, 1001)
    assert parse_rate(30000 / 1001) == Fraction(30000, 1001)
    assert parse_rate(12.5) == Fraction(25, 2)
    for bad in (0, -1, float("nan"), float("inf"), "0"):
        with pytest.raises(ValueError):
            parse_rate(bad)
