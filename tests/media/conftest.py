"""The media suite's session files, written with PyAV at test time by ``tests.media_factory`` (content that encodes
its own position: every video frame shows its index in binary as 8 vertical bars, white = 1, and every audio channel
carries a known sine). The factory's names are re-exported here for the tests that import them from this conftest."""

from __future__ import annotations

import wave

import numpy as np
import pytest

av = pytest.importorskip("av")

# Re-exported: tests/media and tests/robustness import these from this conftest.
from tests.media_factory import (  # noqa: E402,F401
    AMPLITUDE,
    HEIGHT,
    NUM_BARS,
    TONES,
    WIDTH,
    Clip,
    pattern_frame,
    read_pattern,
    tone_signal,
    write_av,
    write_wav,
)


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
