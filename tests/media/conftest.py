"""Small real media files written with PyAV at test time (session scope), with content that encodes its own
position: every video frame shows its index in binary (8 vertical bars, white = 1), and every audio channel
carries a known sine."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

WIDTH, HEIGHT = 64, 48
NUM_BARS = 8
# Per-channel tone frequencies (Hz), in the channel order of the layout.
TONES = {
    "mono": [440.0],
    "stereo": [440.0, 1000.0],
    "5.1": [440.0, 660.0, 880.0, 100.0, 1250.0, 1500.0],  # FL FR FC LFE BL BR
}
AMPLITUDE = 0.4


def pattern_frame(index: int) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), 16, dtype=np.uint8)
    bar = WIDTH // NUM_BARS
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
    t = (start_sample + np.arange(num_samples)) / rate
    return np.stack([AMPLITUDE * np.sin(2 * np.pi * f * t) for f in TONES[layout]]).astype(np.float32)


@dataclass
class Clip:
    path: Path
    num_frames: int = 0
    fps: int = 0
    sampling_rate: int = 0
    layout: str | None = None
    duration: float = 0.0


def write_av(path, *, fmt=None, vcodec="libx264", fps=25, num_frames=50, acodec="aac", rate=48000,
             layout="stereo", vopts=None, start_seconds=0, container_opts=None, pix_fmt="yuv420p") -> Clip:
    out = av.open(str(path), "w", format=fmt, options=container_opts or {})
    vs = as_ = None
    if vcodec:
        vs = out.add_stream(vcodec, rate=fps, options=vopts or {})
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, pix_fmt
    if acodec:
        as_ = out.add_stream(acodec, rate=rate, layout=layout)
    duration = num_frames / fps if vcodec else 1.0
    if vs is not None:
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i), format="rgb24")
            frame.pts = start_seconds * fps + i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    if as_ is not None:
        total = int(round(duration * rate))
        chunk = 1024
        pos = 0
        while pos < total:
            n = min(chunk, total - pos)
            data = tone_signal(layout, rate, n, pos)
            frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start_seconds * rate + pos
            frame.time_base = Fraction(1, rate)
            for packet in as_.encode(frame):
                out.mux(packet)
            pos += n
        for packet in as_.encode(None):
            out.mux(packet)
    out.close()
    return Clip(Path(path), num_frames if vcodec else 0, fps if vcodec else 0, rate if acodec else 0,
                layout if acodec else None, duration)


def write_wav(path, data: np.ndarray, rate: int, sampwidth: int) -> Path:
    """PCM wav via the stdlib (an encoder other than PyAV's muxer). data: float [channels, samples]."""
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


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    clips = {}
    x264 = {"preset": "ultrafast", "crf": "10"}
    clips["mp4"] = write_av(d / "h264_aac_stereo48k.mp4", vcodec="libx264",  # with B-frames (reordering)
                            vopts={"preset": "veryfast", "crf": "10", "bf": "2"},
                            acodec="aac", rate=48000, layout="stereo", num_frames=50, fps=25)
    clips["mp4_51"] = write_av(d / "h264_aac_51_44k.mp4", vcodec="libx264", vopts=x264, acodec="aac", rate=44100,
                               layout="5.1", num_frames=25, fps=25)
    clips["mp4_132"] = write_av(d / "h264_aac_132.mp4", vcodec="libx264", vopts=x264, acodec="aac", rate=48000,
                                layout="stereo", num_frames=132, fps=25)
    clips["webm"] = write_av(d / "vp9_opus.webm", vcodec="libvpx-vp9", fps=10, num_frames=20,
                             vopts={"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "0"},
                             acodec="libopus", rate=48000, layout="stereo")
    clips["avi"] = write_av(d / "mpeg4_mp3.avi", vcodec="mpeg4", vopts={"qscale": "2"}, fps=25, num_frames=25,
                            acodec="libmp3lame", rate=44100, layout="stereo")
    clips["mkv_offset"] = write_av(d / "h264_flac_start10s.mkv", vcodec="libx264", vopts=x264, fps=25, num_frames=25,
                                   acodec="flac", rate=16000, layout="mono", start_seconds=10)
    clips["video_only"] = write_av(d / "h264_only.mp4", vcodec="libx264", vopts=x264, acodec=None,
                                   num_frames=30, fps=30)
    clips["flac"] = write_av(d / "tone.flac", vcodec=None, acodec="flac", rate=22050, layout="stereo")
    clips["mp3"] = write_av(d / "tone.mp3", vcodec=None, acodec="libmp3lame", rate=44100, layout="stereo")
    clips["ogg"] = write_av(d / "tone.ogg", vcodec=None, acodec="libopus", rate=48000, layout="mono")
    clips["m4a"] = write_av(d / "tone.m4a", vcodec=None, acodec="aac", rate=32000, layout="mono", fmt="ipod")
    # wav: 16-bit mono 16 kHz, 24-bit stereo 44.1 kHz whose right channel holds a 10 kHz tone (aliasing test).
    t16 = np.arange(16000) / 16000
    clips["wav16"] = Clip(write_wav(d / "s16_mono16k.wav", (AMPLITUDE * np.sin(2 * np.pi * 440 * t16))[None], 16000, 2),
                          sampling_rate=16000, layout="mono", duration=1.0)
    t44 = np.arange(44100) / 44100
    stereo = np.stack([AMPLITUDE * np.sin(2 * np.pi * 440 * t44), AMPLITUDE * np.sin(2 * np.pi * 10000 * t44)])
    clips["wav24"] = Clip(write_wav(d / "s24_stereo44k.wav", stereo, 44100, 3), sampling_rate=44100, layout="stereo",
                          duration=1.0)
    empty = d / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    clips["wav_empty"] = Clip(empty)
    # Truncated copies (mp4: index at the end is lost; mkv: clusters are self-contained).
    mkv_full = write_av(d / "h264_aac_long.mkv", vcodec="libx264", vopts=x264, fps=25, num_frames=50, acodec="aac",
                        rate=48000, layout="stereo")
    clips["mkv"] = mkv_full
    fast = write_av(d / "faststart.mp4", vcodec="libx264", vopts=x264, fps=25, num_frames=50, acodec="aac",
                    rate=48000, layout="stereo", container_opts={"movflags": "faststart"})
    for key, src in (("mp4_trunc", clips["mp4"].path), ("mkv_trunc", mkv_full.path), ("mp4_fast_trunc", fast.path)):
        data = src.read_bytes()
        p = d / f"half_{src.name}"
        p.write_bytes(data[: len(data) // 2])
        clips[key] = Clip(p)
    garbage = d / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    clips["garbage"] = Clip(garbage)
    # Images.
    from PIL import Image

    img = np.zeros((20, 30, 3), dtype=np.uint8)
    img[..., 0] = np.arange(30, dtype=np.uint8)[None] * 8
    img[..., 1] = np.arange(20, dtype=np.uint8)[:, None] * 12
    img[..., 2] = 200
    Image.fromarray(img).save(d / "image.png")
    Image.fromarray(img).save(d / "image.jpg", quality=95)
    Image.fromarray(img).convert("RGBA").save(d / "image_rgba.png")
    clips["png"] = Clip(d / "image.png")
    clips["jpg"] = Clip(d / "image.jpg")
    clips["png_rgba"] = Clip(d / "image_rgba.png")
    clips["image_array"] = img
    return clips
