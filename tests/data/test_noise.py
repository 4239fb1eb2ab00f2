"""Background-noise mixing in the log-mel power domain (hf_av.data.noise)."""

import numpy as np
import pytest
import torch

from hf_av.data import AudioVisualAugmentation
from hf_av.data.noise import BackgroundNoiseMixing, parse_range
from hf_av.processing.cav_mae import CavMaeFeatureExtractor
from tests.media_factory import write_wav

RATE = 16000


def _write_wav(path, signal):
    write_wav(path, np.asarray(signal, dtype=np.float32)[None], RATE, 2)


def _tone_burst(seconds=1.0, start=0.3, stop=0.7, freq=440.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) * ((t >= start) & (t < stop))).astype(np.float32)


@pytest.fixture
def extractor():
    return CavMaeFeatureExtractor(num_mel_bins=16, target_length=112)


def test_mixed_noise_has_the_drawn_snr_over_the_active_frames(extractor):
    speech = extractor(_tone_burst(), sampling_rate=RATE, return_tensors="pt")["input_values"][0]
    noise = torch.randn(500, 16) - 3.0
    mixer = BackgroundNoiseMixing([noise], mean=extractor.mean, std=extractor.std, snr_db=(10.0, 10.0),
                                  probability=1.0, num_sources=1, source_gain=(1.0, 1.0))
    torch.manual_seed(0)
    mixed = mixer(speech)
    to_power = lambda x: (x.double() * extractor.std + extractor.mean).exp()  # noqa: E731
    padding = (speech.double() * extractor.std + extractor.mean).abs().amax(-1) < 1e-5
    assert padding.sum() == 112 - 98  # 1 s = 98 fbank frames, padded to 112
    torch.testing.assert_close(mixed[padding], speech[padding])  # padding rows untouched
    signal = to_power(speech)[~padding].sum(-1)
    added = (to_power(mixed)[~padding] - to_power(speech)[~padding]).sum(-1)
    active = signal >= signal.max() * 1e-3
    snr = 10 * torch.log10(signal[active].mean() / added[active].mean())
    assert float(snr) == pytest.approx(10.0, abs=1e-3)


def test_power_domain_mix_matches_mixing_the_waveforms(extractor, tmp_path):
    # the approximation behind the augmentation: fbank(speech + noise) ~ log(P_speech + P_noise)
    rng = np.random.default_rng(0)
    speech_wave = _tone_burst() + 0.01 * rng.standard_normal(RATE).astype(np.float32)
    noise_wave = (0.05 * rng.standard_normal(RATE)).astype(np.float32)
    _write_wav(tmp_path / "noise.wav", noise_wave)
    raw = CavMaeFeatureExtractor(num_mel_bins=16, target_length=98, do_normalize=False)
    expected = raw(np.clip(speech_wave + noise_wave, -1, 1), sampling_rate=RATE, return_tensors="pt")["input_values"][0]
    speech = raw(speech_wave, sampling_rate=RATE, return_tensors="pt")["input_values"][0]
    noise = raw(noise_wave, sampling_rate=RATE, return_tensors="pt")["input_values"][0]
    approx = torch.logaddexp(speech, noise)
    # the cross terms average out over a mel band: measured (seeds 0-2) mean 0.08 nats (0.35 dB), 99th
    # percentile 0.36, single worst bin 0.8 (a narrow low band); a wrong domain (adding dB or normalised values)
    # is off by whole units
    error = (approx - expected).abs()
    assert float(error.mean()) < 0.1
    assert float(error.quantile(0.99)) < 0.45


def test_probability_determinism_and_errors(extractor, tmp_path):
    speech = extractor(_tone_burst(), sampling_rate=RATE, return_tensors="pt")["input_values"][0]
    bank = [torch.randn(300, 16), torch.randn(40, 16)]  # a short recording is looped
    never = BackgroundNoiseMixing(bank, mean=extractor.mean, std=extractor.std, probability=0.0)
    assert never(speech) is speech
    always = BackgroundNoiseMixing(bank, mean=extractor.mean, std=extractor.std, probability=1.0)
    torch.manual_seed(3)
    first = always(speech)
    torch.manual_seed(3)
    torch.testing.assert_close(always(speech), first)
    assert not torch.equal(first, speech)
    with pytest.raises(ValueError, match=r"features \[frames, 16\]"):
        always(speech[:, :8])
    with pytest.raises(ValueError, match="one width"):
        BackgroundNoiseMixing([torch.randn(10, 16), torch.randn(10, 8)])
    with pytest.raises(ValueError, match="at least one"):
        BackgroundNoiseMixing([])
    with pytest.raises(ValueError, match="probability"):
        BackgroundNoiseMixing(bank, probability=1.5)
    with pytest.raises(ValueError, match="snr_db"):
        BackgroundNoiseMixing(bank, snr_db=(5.0, -5.0))


def test_from_files_reads_files_and_folders_in_the_extractors_domain(extractor, tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    _write_wav(folder / "a.wav", 0.1 * np.random.default_rng(1).standard_normal(RATE // 2))
    _write_wav(tmp_path / "b.wav", 0.1 * np.random.default_rng(2).standard_normal(RATE))
    (folder / "notes.txt").write_text("not audio")
    mixer = BackgroundNoiseMixing.from_files(f"{folder},{tmp_path / 'b.wav'}", extractor, probability=1.0)
    assert [tuple(t.shape) for t in mixer.noise_log_power] == [(48, 16), (98, 16)]  # real frames only
    assert (mixer.mean, mixer.std) == (extractor.mean, extractor.std)
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        BackgroundNoiseMixing.from_files([str(tmp_path / "nowhere.wav")], extractor)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        BackgroundNoiseMixing.from_files([str(empty)], extractor)
    with pytest.raises(ValueError, match="log-mel fbank"):
        BackgroundNoiseMixing.from_files([str(tmp_path / "b.wav")], object())


def test_augmentation_applies_background_noise_before_its_own_steps(extractor):
    speech = extractor(_tone_burst(), sampling_rate=RATE, return_tensors="pt")["input_values"]
    mixer = BackgroundNoiseMixing([torch.randn(300, 16)], mean=extractor.mean, std=extractor.std, probability=1.0)
    only_noise = AudioVisualAugmentation(random_frame=False, fbank_noise=0.0, time_roll=False, background_noise=mixer)
    torch.manual_seed(0)
    batch = only_noise.augment_batch({"input_values": speech, "labels": torch.tensor([1])})
    torch.manual_seed(0)
    torch.testing.assert_close(batch["input_values"][0], mixer(speech[0]))


def test_parse_range():
    assert parse_range("-6,14", "snr") == (-6.0, 14.0)
    assert parse_range("3", "snr") == (3.0, 3.0)
    for bad in ("a,b", "5,1", "1,2,3", "nan,1"):
        with pytest.raises(ValueError, match="snr"):
            parse_range(bad, "snr")
