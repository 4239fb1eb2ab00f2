"""Unusual but valid media: odd layouts and formats, irregular timing, extreme lengths, missing modalities.

Each case goes through ``decode_media`` and through the processors, whose documented behaviour is checked:
CAV-MAE processes a single modality when asked (``modalities=``) and its model runs ``audioonly`` / ``videoonly``;
LAVisH and DG-SCT need both modalities (their originals have no single-modality mode) and say so; VATT returns
frames alone for muted clips (its video classifier needs only frames) and needs a video stream.
"""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
import torch

from hf_av import CavMaeProcessor, DgSctProcessor, LavishProcessor, VattProcessor
from hf_av.errors import MediaDecodingError
from hf_av.media import decode_media, load_audio
from modeling.cav_mae import CavMaeConfig, CavMaeForAudioVisualClassification
from tests.media.conftest import read_pattern

from .conftest import X264

FAMILY_SHAPES = {
    "cav_mae": (CavMaeProcessor, {"input_values": (1, 1024, 128), "pixel_values": (1, 3, 224, 224)}),
    "lavish": (LavishProcessor, {"input_values": (1, 10, 192, 192), "pixel_values": (1, 10, 3, 192, 192)}),
    "dg_sct": (DgSctProcessor, {"input_values": (1, 10, 1001, 64), "pixel_values": (1, 10, 3, 192, 192)}),
    "vatt": (VattProcessor, {"input_values": (1, 1, 153600), "pixel_values": (1, 1, 32, 3, 224, 224)}),
}
# Files every family must turn into finite, correctly shaped inputs (no warning expected).
VALID_FILES = ["offset", "audio_first", "aac51", "mp3_avi", "one_frame", "silent"]


def _shapes(out):
    return {k: tuple(v.shape) for k, v in out.items()}


@pytest.mark.parametrize("family", sorted(FAMILY_SHAPES))
@pytest.mark.parametrize("key", VALID_FILES)
def test_every_family_processes_unusual_valid_files(edge_media, key, family, recwarn):
    processor_class, shapes = FAMILY_SHAPES[family]
    out = processor_class()(videos=str(edge_media[key]), return_tensors="pt")
    assert _shapes(out) == shapes
    assert all(torch.isfinite(v).all() for v in out.values())
    assert not [w for w in recwarn if issubclass(w.category, UserWarning) and "hf_av" in str(w.filename)]


def test_nonzero_start_timestamps(edge_media):
    out = decode_media(edge_media["offset"])
    assert out.frame_timestamps[0] == pytest.approx(0.0, abs=1e-6)  # counted from the media start (10 s)
    assert abs(out.audio_start_time) < 0.05
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(25))


def test_audio_as_stream_zero(edge_media):
    out = decode_media(edge_media["audio_first"])
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(25))
    assert out.sampling_rate == 16000 and abs(out.audio.shape[1] - 16000) < 1100


def test_24_bit_pcm_is_exact(edge_media):
    audio, rate = load_audio(edge_media["wav24"])
    t = np.arange(16000) / 16000
    assert rate == 16000 and audio.shape == (2, 16000)
    np.testing.assert_allclose(audio[0], 0.4 * np.sin(2 * np.pi * 440 * t), atol=2e-6)


def test_51_aac_channel_handling(edge_media):
    assert decode_media(edge_media["aac51"], video=False).audio.shape[0] == 6
    assert decode_media(edge_media["aac51"], video=False, audio_channels="mono").audio.shape[0] == 1
    assert decode_media(edge_media["aac51"], video=False, audio_channels="first").audio.shape[0] == 1


def test_mp3_in_avi(edge_media):
    out = decode_media(edge_media["mp3_avi"])
    np.testing.assert_array_equal(read_pattern(out.frames), np.arange(25))
    assert out.sampling_rate == 44100 and out.audio.shape[0] == 2 and abs(out.audio.shape[1] - 44100) < 2000


def test_variable_frame_rate(edge_media):
    times = [0.0, 0.04, 0.05, 0.3, 0.31, 0.9, 1.0, 1.7]
    native = decode_media(edge_media["vfr"])
    np.testing.assert_array_equal(read_pattern(native.frames), np.arange(len(times)))
    np.testing.assert_allclose(native.frame_timestamps, times, atol=1e-3)
    # Resampled to 10 fps the sequence holds, at each 0.1 s slot, the last frame shown by then (ffmpeg fps filter).
    # (slot of a frame = its time rounded half up to 0.1 s; round(end * 10) = 17 slots, so the last frame is cut.)
    resampled = decode_media(edge_media["vfr"], frame_rate=10)
    shown = read_pattern(resampled.frames)
    expected = [max(i for i, t in enumerate(times) if np.floor(t * 10 + 0.5) <= k) for k in range(17)]
    np.testing.assert_array_equal(shown, expected)
    # Processors accept it: CAV-MAE's visual modality (the file is muted) and VATT (frames at 25 fps).
    visual = CavMaeProcessor()(videos=str(edge_media["vfr"]), modalities="visual", return_tensors="pt")
    assert visual["pixel_values"].shape == (1, 3, 224, 224)
    assert VattProcessor()(videos=str(edge_media["vfr"]), return_tensors="pt")["pixel_values"].shape[2] == 32


def test_too_short_audio_is_a_clear_error(edge_media):
    # 100 samples: less than one 25 ms analysis window, for CAV-MAE (audio-only file, audio modality).
    with pytest.raises(ValueError, match="too short"):
        CavMaeProcessor()(videos=str(edge_media["tiny_audio"]), modalities="audio")


def test_silent_track_gives_finite_features(edge_media):
    out = CavMaeProcessor()(videos=str(edge_media["silent"]), return_tensors="pt")
    values = out["input_values"]
    # Two values only: the log floor of silence and the (normalised zero) padding after the 1 s clip.
    assert torch.isfinite(values).all() and torch.unique(values.round(decimals=4)).numel() == 2


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """60 s, 5 fps, 32x24 video with 16 kHz mono AAC."""
    import av

    path = tmp_path_factory.mktemp("long") / "long60s.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=5, options=X264)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(300):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), i % 256, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(60 * 16000) / 16000)).astype(np.float32)
        for start in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    return path


def test_long_clip_windows_and_bounded_memory(long_clip):
    processor = CavMaeProcessor()
    tracemalloc.start()
    try:
        decoded = processor.decode(str(long_clip))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One frame (of the first 10 s, CAV-MAE's extraction window) is converted, never the 300.
    assert decoded.frames.shape[0] == 1 and decoded.frame_indices[0] < 50
    assert peak < 16 * 2**20, f"decoding a 60 s clip peaked at {peak / 2**20:.1f} MiB"
    out = processor(videos=str(long_clip), return_tensors="pt")
    assert out["input_values"].shape == (1, 1024, 128)  # the first 10.24 s
    for family in ("lavish", "dg_sct", "vatt"):
        processor_class, shapes = FAMILY_SHAPES[family]
        assert _shapes(processor_class()(videos=str(long_clip), return_tensors="pt")) == shapes


# ---- missing modalities ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_classifier():
    config = CavMaeConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, num_modality_specific_layers=1,
                          num_shared_layers=1, num_labels=3)
    return CavMaeForAudioVisualClassification(config).eval()


def test_cav_mae_needs_both_by_default_and_says_how_to_get_one(edge_media):
    with pytest.raises(ValueError, match=r"video_only.mp4: no audio.*modalities=\"available\""):
        CavMaeProcessor()(videos=str(edge_media["video_only"]))
    with pytest.raises(ValueError, match=r"audio_only.m4a: no video frames.*modalities"):
        CavMaeProcessor()(videos=str(edge_media["audio_only"]))


def test_cav_mae_single_modality_end_to_end(edge_media, tiny_classifier):
    processor = CavMaeProcessor()
    visual = processor(videos=str(edge_media["video_only"]), modalities="available", return_tensors="pt")
    audio = processor(videos=str(edge_media["audio_only"]), modalities="available", return_tensors="pt")
    assert set(visual) == {"pixel_values"} and set(audio) == {"input_values"}
    assert set(processor(videos=str(edge_media["offset"]), modalities="audio")) == {"input_values"}
    assert set(processor(videos=str(edge_media["offset"]), modalities="visual")) == {"pixel_values"}
    with torch.no_grad():
        for inputs in (visual, audio):  # videoonly / audioonly
            logits = tiny_classifier(**inputs).logits
            assert logits.shape == (1, 3) and torch.isfinite(logits).all()
    with pytest.raises(MediaDecodingError, match="video_only.mp4: no audio stream"):
        processor(videos=str(edge_media["video_only"]), modalities="audio")
    with pytest.raises(ValueError, match="same modalities"):
        processor(videos=[str(edge_media["video_only"]), str(edge_media["offset"])], modalities="available")
    with pytest.raises(ValueError, match="modalities must be one of"):
        processor(videos=str(edge_media["offset"]), modalities="both")


@pytest.mark.parametrize("family", ["lavish", "dg_sct"])
def test_two_modality_families_refuse_missing_modality(edge_media, family):
    # Every processor takes modalities= (issue 13): by default both are needed and the error says how to get one;
    # whether the model can run on one modality is the model's business.
    processor_class, _ = FAMILY_SHAPES[family]
    with pytest.raises(MediaDecodingError, match=r"video_only.mp4: no audio.*modalities=\"available\""):
        processor_class()(videos=str(edge_media["video_only"]))
    with pytest.raises(MediaDecodingError, match="audio_only.m4a: no video frames"):
        processor_class()(videos=str(edge_media["audio_only"]))
    assert set(processor_class()(videos=str(edge_media["video_only"]), modalities="available")) == {"pixel_values"}
    with pytest.raises(MediaDecodingError, match="video_only.mp4: no audio stream"):
        processor_class()(videos=str(edge_media["video_only"]), modalities="audio")


def test_vatt_muted_clip_gives_frames_and_audio_only_file_is_refused(edge_media):
    out = VattProcessor()(videos=str(edge_media["video_only"]), return_tensors="pt")
    assert _shapes(out) == {"pixel_values": (1, 1, 32, 3, 224, 224)}
    with pytest.raises(MediaDecodingError, match="audio_only.m4a: no video stream"):
        VattProcessor()(videos=str(edge_media["audio_only"]))


def test_short_single_frame_video_through_decode(edge_media):
    out = decode_media(edge_media["one_frame"])
    assert out.frames.shape[0] == 1 and out.num_video_frames == 1
    with pytest.raises(MediaDecodingError, match="not available"):
        decode_media(edge_media["one_frame"], frame_indices=[3])
