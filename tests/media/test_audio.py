"""Audio: formats, resampling quality (libswresample), channel modes, trimming."""

from __future__ import annotations

import numpy as np
import pytest

from hf_av.media import decode_media, load_audio

from .conftest import AMPLITUDE, TONES


def peak_hz(x: np.ndarray, rate: int) -> float:
    n = x.shape[-1]
    spec = np.abs(np.fft.rfft(x * np.hanning(n)))
    return float(np.fft.rfftfreq(n, 1 / rate)[np.argmax(spec)])


def tone_amplitude(x: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of one sinusoid by least squares (robust to other tones)."""
    t = np.arange(x.shape[-1]) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


@pytest.mark.parametrize("key", ["wav16", "wav24", "flac", "mp3", "ogg", "m4a", "mp4", "webm", "avi", "mp4_51", "mkv"])
def test_formats_decode_known_tones(media, key):
    clip = media[key]
    audio, sr = load_audio(clip.path)
    assert audio.dtype == np.float32 and sr == clip.sampling_rate
    layout = clip.layout
    assert audio.shape[0] == len(TONES[layout])
    lossy = key not in ("wav16", "wav24", "flac")
    seg = audio[:, sr // 10: sr // 10 + sr // 2]  # skip codec start-up
    tones = [440.0, 10000.0] if key == "wav24" else TONES[layout]
    for ch, freq in enumerate(tones):
        assert abs(peak_hz(seg[ch], sr) - freq) < 3, (key, ch)
        assert tone_amplitude(seg[ch], freq, sr) == pytest.approx(AMPLITUDE, rel=0.1 if lossy else 1e-3)
    assert np.abs(audio).max() <= 1.0 + 0.05


def test_pcm_is_exact(media):
    audio, sr = load_audio(media["wav16"].path)
    t = np.arange(16000) / 16000
    ref = np.round(AMPLITUDE * np.sin(2 * np.pi * 440 * t) * 32767) / 32768
    np.testing.assert_allclose(audio[0], ref, atol=1e-7)
    audio24, _ = load_audio(media["wav24"].path)
    t = np.arange(44100) / 44100
    np.testing.assert_allclose(audio24[0], AMPLITUDE * np.sin(2 * np.pi * 440 * t), atol=2e-7)


def test_downsampling_is_band_limited(media):
    # 44.1 kHz: left 440 Hz, right 10 kHz. At 16 kHz the 10 kHz tone is above Nyquist and must vanish
    # (a naive decimator would alias it to 6 kHz).
    audio, sr = load_audio(media["wav24"].path, sampling_rate=16000)
    assert sr == 16000 and audio.shape == (2, 16000)
    mid = audio[:, 1000:15000]
    assert abs(peak_hz(mid[0], sr) - 440) < 2
    assert tone_amplitude(mid[0], 440, sr) == pytest.approx(AMPLITUDE, rel=5e-3)
    assert np.sqrt(np.mean(mid[1] ** 2)) < 1e-3 * AMPLITUDE
    assert tone_amplitude(mid[1], 6100, sr) < 1e-4


def test_upsampling_preserves_tone(media):
    audio, sr = load_audio(media["wav16"].path, sampling_rate=48000)
    assert audio.shape == (1, 48000)
    mid = audio[0, 2000:46000]
    assert abs(peak_hz(mid, sr) - 440) < 2
    assert tone_amplitude(mid, 440, sr) == pytest.approx(AMPLITUDE, rel=5e-3)
    spec = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    # no imaging above the source's Nyquist frequency (8 kHz)
    assert spec[np.fft.rfftfreq(mid.size, 1 / sr) > 8500].max() < 1e-4 * spec.max()


def test_resampling_keeps_alignment(media):
    # the resampled signal stays in phase with the original (no delay introduced by the filter)
    audio, sr = load_audio(media["wav16"].path, sampling_rate=22050)
    t = np.arange(audio.shape[1]) / sr
    ref = AMPLITUDE * np.sin(2 * np.pi * 440 * t)
    np.testing.assert_allclose(audio[0, 500:-500], ref[500:-500], atol=5e-3)


def test_channel_modes_51(media):
    path = media["mp4_51"].path
    keep, sr = load_audio(path)
    first, _ = load_audio(path, audio_channels="first")
    mono, _ = load_audio(path, audio_channels="mono")
    stereo, _ = load_audio(path, audio_channels="stereo")
    assert keep.shape[0] == 6 and first.shape[0] == 1 and mono.shape[0] == 1 and stereo.shape[0] == 2
    np.testing.assert_array_equal(first[0], keep[0])
    # libswresample's default matrix = ffmpeg -ac 1: FL, FR at -3 dB, FC at 0 dB, LFE dropped, surrounds at -6 dB.
    c = np.sqrt(0.5)
    np.testing.assert_allclose(mono[0], c * (keep[0] + keep[1]) + keep[2] + 0.5 * (keep[4] + keep[5]), atol=1e-5)
    # ffmpeg -ac 2: L = FL + FC/sqrt2 + BL/sqrt2, R likewise.
    np.testing.assert_allclose(stereo[0], keep[0] + c * (keep[2] + keep[4]), atol=1e-5)
    np.testing.assert_allclose(stereo[1], keep[1] + c * (keep[2] + keep[5]), atol=1e-5)


def test_channel_modes_stereo_and_mono_sources(media):
    keep, _ = load_audio(media["wav24"].path)
    mono, _ = load_audio(media["wav24"].path, audio_channels="mono")
    np.testing.assert_allclose(mono[0], np.sqrt(0.5) * (keep[0] + keep[1]), atol=1e-5)
    src, _ = load_audio(media["wav16"].path)
    up, _ = load_audio(media["wav16"].path, audio_channels="stereo")
    assert up.shape[0] == 2
    np.testing.assert_allclose(up, np.repeat(np.sqrt(0.5) * src, 2, axis=0), atol=1e-5)
    resampled_first, sr = load_audio(media["wav24"].path, 16000, "first")
    resampled_keep, _ = load_audio(media["wav24"].path, 16000)
    np.testing.assert_array_equal(resampled_first[0], resampled_keep[0])


def test_audio_trimmed_to_stream_duration(media):
    # AAC decodes whole 1024-sample frames; the mp4 states the stream length, so output stops there.
    clip = media["mp4"]
    trimmed, sr = load_audio(clip.path)
    assert trimmed.shape[1] == int(clip.duration * sr)
    untrimmed, _ = load_audio(clip.path, trim_audio=False)
    assert untrimmed.shape[1] >= trimmed.shape[1]
    np.testing.assert_array_equal(untrimmed[:, : trimmed.shape[1]], trimmed)
    resampled, sr16 = load_audio(clip.path, 16000)
    assert resampled.shape[1] == int(clip.duration * 16000)


def test_audio_window(media):
    full, sr = load_audio(media["flac"].path)
    part, _ = load_audio(media["flac"].path, start_time=0.25, end_time=0.5)
    assert part.shape == (2, int(0.25 * sr) + 1) or part.shape == (2, round(0.25 * sr))
    start = round(0.25 * sr)
    np.testing.assert_allclose(part, full[:, start:start + part.shape[1]], atol=1e-6)
    out = decode_media(media["flac"].path, start_time=0.25)
    assert out.audio_start_time == pytest.approx(start / sr)
