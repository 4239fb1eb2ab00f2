"""Real media written with PyAV for the robustness suite, and helpers that damage encoded files.

Clean files come from ``tests.media.conftest.write_av`` (frames that encode their index as bars, known tones), so a
partial decode can be checked for *correct* content, not only for shape. Damaged copies are made from those bytes:
``truncate`` cuts the encoded stream, ``corrupt`` overwrites bytes in a region of it.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from tests.media.conftest import WIDTH, HEIGHT, pattern_frame, tone_signal, write_av, write_wav  # noqa: E402
from tests.media_factory import write_media  # noqa: E402

X264 = {"preset": "ultrafast", "crf": "20", "threads": "1"}


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: max(1, int(len(data) * fraction))])
    return Path(dst)


def corrupt(src: Path, dst: Path, region: str, count: int = 60, seed: int = 0) -> Path:
    """Overwrite ``count`` random bytes in the middle third (``"middle"``) or the last fifth (``"end"``)."""
    data = bytearray(Path(src).read_bytes())
    n = len(data)
    lo, hi = (n // 3, 2 * n // 3) if region == "middle" else (int(n * 0.8), n)
    rng = np.random.default_rng(seed)
    for position in rng.integers(lo, hi, count):
        data[position] = int(rng.integers(0, 256))
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def decode_recording(fn, *args, **kwargs):
    """Call ``fn`` and return ``(result, exception, caught warnings)``; only ValueErrors are expected to escape."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return fn(*args, **kwargs), None, caught
        except ValueError as exc:
            return None, exc, caught


def write_vfr(path: Path, times: list[float]) -> Path:
    """H.264 in mkv with frames at irregular presentation times (seconds); frame ``i`` shows pattern ``i``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1000, options=X264)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i), format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_audio_first(path: Path, seconds: float = 1.0, fps: int = 25, rate: int = 16000) -> Path:
    """An mkv whose stream 0 is the audio track and stream 1 the video (order of creation)."""
    frames = (pattern_frame(i) for i in range(int(seconds * fps)))
    tone = tone_signal("mono", rate, int(seconds * rate))
    return write_media(path, frames=frames, fps=fps, video_options=X264, audio=tone, sampling_rate=rate,
                       layout="mono", audio_stream_first=True)


def write_silent(path: Path, seconds: float = 1.0, fps: int = 25, rate: int = 16000) -> Path:
    """Video with an audio track of digital silence (all-zero PCM in mkv)."""
    frames = (pattern_frame(i) for i in range(int(seconds * fps)))
    silence = np.zeros((1, int(seconds * rate)), np.int16)
    return write_media(path, frames=frames, fps=fps, video_options=X264, audio=silence, sampling_rate=rate,
                       layout="mono", audio_codec="pcm_s16le")


# Clean sources that the damage tests cut and garble: (key, writer kwargs, has video, has audio)
SOURCES = {
    "mkv_h264_aac": (dict(fmt=None, vopts=X264, fps=25, num_frames=50, acodec="aac", rate=48000), "a.mkv"),
    "webm_vp9_opus": (dict(vcodec="libvpx-vp9", fps=10, num_frames=20, acodec="libopus", rate=48000,
                           vopts={"deadline": "realtime", "cpu-used": "8", "b": "0", "crf": "30"}), "a.webm"),
    "avi_mpeg4_mp3": (dict(vcodec="mpeg4", fps=25, num_frames=25, acodec="libmp3lame", rate=44100), "a.avi"),
    "mp4_faststart": (dict(vopts=X264, fps=25, num_frames=50, acodec="aac", container_opts={"movflags": "faststart"}),
                      "a.mp4"),
    "ts_h264_aac": (dict(fmt="mpegts", vopts=X264, fps=25, num_frames=50, acodec="aac"), "a.ts"),
    "flac": (dict(vcodec=None, acodec="flac", rate=22050), "a.flac"),
    "mp3": (dict(vcodec=None, acodec="libmp3lame", rate=44100), "a.mp3"),
    "wav_s16": (dict(vcodec=None, acodec="pcm_s16le", rate=16000, layout="mono"), "a.wav"),
}


@pytest.fixture(scope="session")
def clean_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust_src")
    return {key: write_av(root / name, **kwargs) for key, (kwargs, name) in SOURCES.items()}


@pytest.fixture(scope="session")
def edge_media(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust_edge")
    files = {}
    files["offset"] = write_av(root / "start10s.mkv", vopts=X264, fps=25, num_frames=25, acodec="aac", rate=16000,
                               layout="mono", start_seconds=10).path
    files["audio_first"] = write_audio_first(root / "audio_first.mkv")
    t = np.arange(16000) / 16000
    files["wav24"] = write_wav(root / "s24.wav", np.stack([0.4 * np.sin(2 * np.pi * 440 * t)] * 2), 16000, 3)
    files["aac51"] = write_av(root / "aac51.mp4", vopts=X264, fps=25, num_frames=25, acodec="aac", rate=48000,
                              layout="5.1").path
    files["mp3_avi"] = write_av(root / "mp3.avi", vcodec="mpeg4", fps=25, num_frames=25, acodec="libmp3lame",
                                rate=44100).path
    files["vfr"] = write_vfr(root / "vfr.mkv", [0.0, 0.04, 0.05, 0.3, 0.31, 0.9, 1.0, 1.7])
    files["one_frame"] = write_av(root / "one_frame.mp4", vopts=X264, fps=25, num_frames=1, acodec="aac",
                                  rate=16000, layout="mono").path
    files["tiny_audio"] = write_wav(root / "tiny.wav", np.full((1, 100), 0.1), 16000, 2)
    files["silent"] = write_silent(root / "silent.mkv")
    files["video_only"] = write_av(root / "video_only.mp4", vopts=X264, fps=25, num_frames=25, acodec=None).path
    files["audio_only"] = write_av(root / "audio_only.m4a", vcodec=None, acodec="aac", rate=48000, fmt="ipod").path
    return files
