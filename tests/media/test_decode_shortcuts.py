"""The decode shortcuts give what a full decode gives, bit for bit.

* Non-reference frames shown before the first selected frame are not decoded (H.264, ``_NonRefSkipper``): every
  selected frame must equal the same frame of a plain sequential PyAV decode of every frame.
* ``audio_channels="first"`` resamples channel 0 alone: equal to resampling all channels and keeping channel 0.
* Inside a DataLoader worker the decoders run single-threaded: same pixels and samples as threaded decoding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_av.media import decode_media
from hf_av.media.backends import pyav as pyav_backend
from hf_av.media.backends.pyav import PyAVBackend
from tests.media_factory import tone_signal, write_media

av = pytest.importorskip("av")

NUM_FRAMES = 40


def _textured_frames(count: int, width: int = 96, height: int = 64):
    """Moving gradients, a travelling block and noise: every frame differs everywhere, so a frame decoded
    from wrong references would show it."""
    rng = np.random.default_rng(0)
    y = np.arange(height, dtype=np.float64)[:, None]
    x = np.arange(width, dtype=np.float64)[None, :]
    for i in range(count):
        channels = (127 + 100 * np.sin(x / 9 + 0.3 * i), 127 + 100 * np.cos(y / 7 - 0.2 * i),
                    127 + 100 * np.sin((x + y) / 13 + 0.5 * i))
        image = np.stack(np.broadcast_arrays(*channels), axis=-1)
        image = image + rng.normal(0, 8, size=image.shape)
        left = (5 * i) % (width - 16)
        image[10:26, left:left + 16] = (250, 30, 30)
        yield np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def bframe_clips(tmp_path_factory):
    """H.264 with B-frames: B-pyramid (reference and non-reference B-frames) + 5.1 AAC; plain B-frames (all
    non-reference) with short open GOPs + stereo AAC; and the same in Matroska (no dts: the shortcut stays off)."""
    d = tmp_path_factory.mktemp("bframes")
    audio_51 = tone_signal("5.1", 48000, int(48000 * NUM_FRAMES / 25))
    audio_2 = tone_signal("stereo", 48000, int(48000 * NUM_FRAMES / 25))
    clips = {
        "pyramid": write_media(d / "pyramid.mp4", frames=_textured_frames(NUM_FRAMES), fps=25, audio=audio_51,
                               layout="5.1", video_options={"x264-params": "bframes=3:b-adapt=0:b-pyramid=normal"}),
        "open_gop": write_media(d / "open_gop.mp4", frames=_textured_frames(NUM_FRAMES), fps=25, audio=audio_2,
                                layout="stereo", video_options={
                                    "x264-params": "bframes=2:b-adapt=0:b-pyramid=none:keyint=12:min-keyint=12:"
                                                   "open-gop=1:scenecut=0"}),
        "mkv": write_media(d / "pyramid.mkv", frames=_textured_frames(NUM_FRAMES), fps=25, audio=audio_2,
                           layout="stereo", video_options={"x264-params": "bframes=3:b-adapt=0"}),
    }
    return clips


def _sequential_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(container.streams.video[0])]


def _count_skip_modes(monkeypatch) -> list[str]:
    """Records the skip mode set for every packet the skipper prepares."""
    modes: list[str] = []
    prepare = pyav_backend._NonRefSkipper.prepare

    def recording(self, packet, codec_context):
        prepare(self, packet, codec_context)
        modes.append(codec_context.skip_frame)

    monkeypatch.setattr(pyav_backend._NonRefSkipper, "prepare", recording)
    return modes


@pytest.mark.parametrize("key", ["pyramid", "open_gop"])
def test_nonref_skipping_gives_the_sequentially_decoded_frames(bframe_clips, key, monkeypatch):
    path = bframe_clips[key]
    reference = _sequential_frames(path)
    assert len(reference) == NUM_FRAMES
    with av.open(str(path)) as container:
        kinds = {str(frame.pict_type) for frame in container.decode(container.streams.video[0])}
    assert any("B" in kind or kind == "3" for kind in kinds), f"the clip must contain B-frames, got {kinds}"
    modes = _count_skip_modes(monkeypatch)
    for index in range(NUM_FRAMES):
        out = decode_media(path, audio=False, frame_indices=[index])
        np.testing.assert_array_equal(out.frames[0], reference[index], err_msg=f"frame {index}")
        assert out.frame_indices.tolist() == [index] and out.num_video_frames == NUM_FRAMES
    assert modes.count("NONREF") > NUM_FRAMES, "the shortcut was never used"
    # several frames, unordered and repeated, with the audio, as the processors ask
    chosen = [33, 7, 33, 20]
    out = decode_media(path, frame_indices=chosen, sampling_rate=16000, audio_channels="first")
    full = decode_media(path, frame_indices=chosen, sampling_rate=16000, audio_channels="first",
                        backend=PyAVBackend(skip_non_reference=False))
    np.testing.assert_array_equal(out.frames, np.stack([reference[i] for i in chosen]))
    for name in ("frames", "frame_indices", "frame_timestamps", "source_frame_indices", "audio"):
        np.testing.assert_array_equal(getattr(out, name), getattr(full, name), err_msg=name)
    assert out.num_video_frames == full.num_video_frames and out.duration == full.duration


def test_nonref_skipping_stays_off_without_decode_timestamps(bframe_clips, monkeypatch):
    """Matroska stores no dts: packet order cannot bound the presentation order, so every frame is decoded."""
    path = bframe_clips["mkv"]
    reference = _sequential_frames(path)
    modes = _count_skip_modes(monkeypatch)
    out = decode_media(path, audio=False, frame_indices=[30, 11])
    np.testing.assert_array_equal(out.frames, np.stack([reference[30], reference[11]]))
    assert "NONREF" not in modes


def test_nonref_skipping_falls_back_to_a_full_decode(bframe_clips, monkeypatch):
    """When the stream breaks an assumption after frames were skipped, the file is decoded again in full."""
    path = bframe_clips["pyramid"]
    reference = _sequential_frames(path)
    frame_index = pyav_backend._NonRefSkipper.frame_index
    calls = {"restarts": 0}

    def unsafe_late(self, frame):
        if self.skipped_any and self.last_output_rank >= 10:
            calls["restarts"] += 1
            raise pyav_backend._SkipUnsafe()
        return frame_index(self, frame)

    monkeypatch.setattr(pyav_backend._NonRefSkipper, "frame_index", unsafe_late)
    out = decode_media(path, audio=False, frame_indices=[25])
    assert calls["restarts"] == 1
    np.testing.assert_array_equal(out.frames[0], reference[25])


def test_first_channel_resampled_alone_equals_all_channels(bframe_clips):
    path = bframe_clips["pyramid"]  # 5.1 AAC (planar float)
    for rate in (None, 16000, 22050):
        first = decode_media(path, video=False, sampling_rate=rate, audio_channels="first").audio
        keep = decode_media(path, video=False, sampling_rate=rate, audio_channels="keep").audio
        assert first.shape == (1, keep.shape[1])
        np.testing.assert_array_equal(first[0], keep[0])
    windowed_first = decode_media(path, video=False, sampling_rate=16000, audio_channels="first",
                                  start_time=0.3, end_time=1.1).audio
    windowed_keep = decode_media(path, video=False, sampling_rate=16000, audio_channels="keep",
                                 start_time=0.3, end_time=1.1).audio
    np.testing.assert_array_equal(windowed_first[0], windowed_keep[0])
    assert windowed_first.shape[1] == math.floor(0.8 * 16000 + 0.5)


def test_single_threaded_decoders_in_dataloader_workers(bframe_clips, monkeypatch):
    path = bframe_clips["pyramid"]
    threaded = decode_media(path, frame_indices=[5, 31], sampling_rate=16000, audio_channels="first")
    monkeypatch.setattr(pyav_backend, "_dataloader_worker_share", lambda: 1)
    opened = []
    set_threads = pyav_backend._set_decoder_threads

    def recording(stream):
        set_threads(stream)
        opened.append((stream.type, stream.codec_context.thread_count))

    monkeypatch.setattr(pyav_backend, "_set_decoder_threads", recording)
    single = decode_media(path, frame_indices=[5, 31], sampling_rate=16000, audio_channels="first")
    assert sorted(opened) == [("audio", 1), ("video", 1)]
    np.testing.assert_array_equal(single.frames, threaded.frames)
    np.testing.assert_array_equal(single.audio, threaded.audio)


class _WorkerShare:
    """A dataset whose item is the decoder-thread share seen inside the worker."""

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return pyav_backend._dataloader_worker_share()


def test_dataloader_worker_share_of_the_cores(monkeypatch):
    torch = pytest.importorskip("torch")
    assert pyav_backend._dataloader_worker_share() is None  # not a worker
    monkeypatch.setattr(pyav_backend.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    for workers, share in ((1, 4), (2, 2), (3, 1)):
        loader = torch.utils.data.DataLoader(_WorkerShare(), batch_size=None, num_workers=workers)
        assert next(iter(loader)) == share, workers
