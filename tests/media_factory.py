"""Synthetic test media written with PyAV: the one writer behind the test suites' clips and the benchmark clips.

Two levels:

* ``write_av(path, ...)`` writes a clip whose content describes itself — every video frame shows its index in
  binary (``pattern_frame``, decoded back by ``read_pattern``) and every audio channel carries a known sine
  (``TONES`` / ``tone_signal``, amplitude ``AMPLITUDE``) — for any container, video / audio codec, frame size,
  frame rate, length, sample rate and channel layout, with or without either stream. It returns a ``Clip``.
* ``write_media(path, frames=..., audio=...)`` muxes caller-supplied content (RGB frames, a ``[channels, samples]``
  waveform) into any container. ``write_av`` is built on it, and so are the suites' own content variants
  (``tests/data/helpers.py``, ``tests/pipelines/_helpers.py``, ``tests/processing/_media.py``,
  ``benchmarks/media_fixtures.py``).

``write_wav`` writes PCM wav through the stdlib ``wave`` module (an encoder other than PyAV's muxer).

Everything is deterministic: the same arguments give the same encoded packets. PyAV is imported when a file is
written, so importing this module needs only NumPy.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = [
    "AMPLITUDE",
    "HEIGHT",
    "NUM_BARS",
    "TONES",
    "WIDTH",
    "Clip",
    "pattern_frame",
    "read_pattern",
    "tone_signal",
    "write_av",
    "write_media",
    "write_wav",
]

WIDTH, HEIGHT = 64, 48
NUM_BARS = 8
# Per-channel tone frequencies (Hz), in the channel order of the layout.
TONES = {
    "mono": [440.0],
    "stereo": [440.0, 1000.0],
    "5.1": [440.0, 660.0, 880.0, 100.0, 1250.0, 1500.0],  # FL FR FC LFE BL BR
}
AMPLITUDE = 0.4
AUDIO_CHUNK = 1024  # samples per audio frame handed to the encoder


# --- self-describing content ------------------------------------------------------------------------------------


def pattern_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """An RGB frame showing ``index`` in binary: ``NUM_BARS`` vertical bars, bit ``b`` white (235) when set."""
    img = np.full((height, width, 3), 16, dtype=np.uint8)
    bar = width // NUM_BARS
    for b in range(NUM_BARS):
        if (index >> b) & 1:
            img[:, b * bar:(b + 1) * bar] = 235
    return img


def read_pattern(frames: np.ndarray) -> np.ndarray:
    """Frame indices encoded by ``pattern_frame`` (works on any resolution, robust to lossy coding)."""
    frames = np.asarray(frames, dtype=np.float64)
    w = frames.shape[2]
    bar = w / NUM_BARS
    out = np.zeros(frames.shape[0], dtype=np.int64)
    for b in range(NUM_BARS):
        lo, hi = int(b * bar + bar / 4), int((b + 1) * bar - bar / 4)
        bit = frames[:, :, lo:hi].mean(axis=(1, 2, 3)) > 125
        out |= bit.astype(np.int64) << b
    return out


def tone_signal(layout: str, rate: int, num_samples: int, start_sample: int = 0) -> np.ndarray:
    """``[channels, num_samples]`` float32: channel ``c`` of ``layout`` is a sine at ``TONES[layout][c]`` Hz."""
    t = (start_sample + np.arange(num_samples)) / rate
    return np.stack([AMPLITUDE * np.sin(2 * np.pi * f * t) for f in TONES[layout]]).astype(np.float32)


# --- writers ----------------------------------------------------------------------------------------------------


def write_media(
    path,
    *,
    frames: Iterable[np.ndarray] | None = None,
    fps: int = 25,
    video_codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    video_options: dict | None = None,
    audio: np.ndarray | None = None,
    sampling_rate: int = 48000,
    layout: str = "mono",
    audio_codec: str = "aac",
    format: str | None = None,
    container_options: dict | None = None,
    start_seconds: float = 0,
    audio_stream_first: bool = False,
) -> Path:
    """Encode ``frames`` and/or ``audio`` into one file and return its path.

    frames: ``[height, width, 3]`` uint8 RGB arrays (any iterable; the first one fixes the size), or ``None`` for
        no video stream. Frame ``i`` gets the timestamp ``start_seconds + i / fps``.
    audio: ``[channels, samples]`` waveform, or ``None`` for no audio stream: float32 in [-1, 1] (planar float
        frames) or int16 (packed s16 frames, e.g. for ``pcm_s16le``). Sent in frames of ``AUDIO_CHUNK`` samples
        starting at ``start_seconds``; ``layout`` must match the number of channels.
    format: container (``None``: guessed from the file name); ``container_options`` / ``video_options``: FFmpeg
        muxer / encoder options. The video stream is created before the audio stream (stream 0 is the video)
        unless ``audio_stream_first``.
    """
    import av

    video_frames = iter(frames) if frames is not None else None
    first = next(video_frames, None) if video_frames is not None else None
    if video_frames is not None and first is None:
        raise ValueError("write_media: `frames` is empty (pass frames=None for a file without video)")
    with av.open(str(path), "w", format=format, options=container_options or {}) as out:
        video = sound = None
        if audio is not None and audio_stream_first:
            sound = out.add_stream(audio_codec, rate=sampling_rate, layout=layout)
        if first is not None:
            video = out.add_stream(video_codec, rate=fps, options=video_options or {})
            video.height, video.width = first.shape[:2]
            video.pix_fmt = pix_fmt
        if audio is not None and sound is None:
            sound = out.add_stream(audio_codec, rate=sampling_rate, layout=layout)
        if video is not None:
            start_pts = int(round(start_seconds * fps))
            for i, image in enumerate(_chain(first, video_frames)):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = start_pts + i
                frame.time_base = Fraction(1, fps)
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode(None):
                out.mux(packet)
        if sound is not None:
            packed = audio.dtype == np.int16
            start_pts = int(round(start_seconds * sampling_rate))
            for pos in range(0, audio.shape[1], AUDIO_CHUNK):
                piece = audio[:, pos:pos + AUDIO_CHUNK]
                if packed:  # interleaved samples: [1, samples * channels]
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece.T).reshape(1, -1), format="s16",
                                                       layout=layout)
                else:
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece, dtype=np.float32), format="fltp",
                                                       layout=layout)
                frame.sample_rate = sampling_rate
                frame.pts = start_pts + pos
                frame.time_base = Fraction(1, sampling_rate)
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return Path(path)


def _chain(first, rest):
    yield first
    yield from rest


@dataclass
class Clip:
    """What ``write_av`` wrote (zeros / ``None`` for an absent stream)."""

    path: Path
    num_frames: int = 0
    fps: int = 0
    sampling_rate: int = 0
    layout: str | None = None
    duration: float = 0.0


def write_av(path, *, fmt=None, vcodec="libx264", fps=25, num_frames=50, width=WIDTH, height=HEIGHT,
             acodec="aac", rate=48000, layout="stereo", duration=None, vopts=None, start_seconds=0,
             container_opts=None, pix_fmt="yuv420p") -> Clip:
    """A clip with self-describing content (``pattern_frame`` video, ``tone_signal`` audio).

    fmt: container (``None``: from the file name). vcodec / acodec: encoder names, ``None`` for a file without
    that stream. Video: ``num_frames`` frames of ``width`` x ``height`` at ``fps``. Audio: ``layout``
    (``"mono"``, ``"stereo"``, ``"5.1"``) at ``rate`` Hz lasting ``duration`` seconds (default: as long as the
    video, 1 s without video). vopts / container_opts: encoder / muxer options. start_seconds: timestamp of the
    first frame and sample (a non-zero start time).
    """
    if duration is None:
        duration = num_frames / fps if vcodec else 1.0
    frames = (pattern_frame(i, width, height) for i in range(num_frames)) if vcodec else None
    audio = tone_signal(layout, rate, int(round(duration * rate))) if acodec else None
    write_media(path, frames=frames, fps=fps, video_codec=vcodec, pix_fmt=pix_fmt, video_options=vopts,
                audio=audio, sampling_rate=rate, layout=layout, audio_codec=acodec, format=fmt,
                container_options=container_opts, start_seconds=start_seconds)
    return Clip(Path(path), num_frames if vcodec else 0, fps if vcodec else 0, rate if acodec else 0,
                layout if acodec else None, duration)


def write_wav(path, data: np.ndarray, rate: int, sampwidth: int) -> Path:
    """PCM wav via the stdlib (an encoder other than PyAV's muxer). data: float [channels, samples];
    sampwidth: 2 (16-bit) or 3 (24-bit)."""
    channels = data.shape[0]
    scale = float(2 ** (8 * sampwidth - 1) - 1)
    ints = np.round(np.clip(data.T, -1, 1) * scale).astype(np.int64).reshape(-1)
    if sampwidth == 2:
        raw = ints.astype("<i2").tobytes()
    else:  # 24-bit little endian
        b = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        raw = b.tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(raw)
    return Path(path)
