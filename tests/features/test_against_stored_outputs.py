"""The fast fbank / log-mel paths give the outputs the earlier implementation gave (stored before the rework).

``fixtures/features/fbank_before_rework.safetensors`` holds inputs and outputs of hf_av at commit c6f00d0 (the
straightforward whole-batch implementation, itself checked against torchaudio / the original extractors by the
parity tests). Bound: 1e-6 absolute on log-mel values (the FFT input is bit-identical; only the order of the
mel product's additions of positive terms may differ).
"""

import pytest
import torch
from safetensors.torch import load_file

from hf_av import CavMaeFeatureExtractor, DgSctFeatureExtractor, LavishFeatureExtractor
from hf_av.features import kaldi_fbank, log_mel_spectrogram

BOUND = 1e-6

FBANK_CONFIGS = {
    "cavmae": dict(sample_frequency=16000, num_mel_bins=128, window_type="hanning", htk_compat=True, use_energy=False),
    "lavish": dict(sample_frequency=16000, num_mel_bins=192, frame_shift=5.2, window_type="hanning", htk_compat=True,
                   use_energy=False),
    "povey_energy": dict(num_mel_bins=23, use_energy=True),
    "povey_energy_notraw_first": dict(num_mel_bins=40, use_energy=True, raw_energy=False, htk_compat=False,
                                      energy_floor=0.0),
    "hamming_nosnip": dict(num_mel_bins=40, window_type="hamming", snip_edges=False),
    "blackman_magnitude": dict(num_mel_bins=30, window_type="blackman", use_power=False, subtract_mean=True),
    "rect_nodc_nopre": dict(num_mel_bins=40, window_type="rectangular", remove_dc_offset=False,
                            preemphasis_coefficient=0.0),
    "nodc_pre": dict(num_mel_bins=40, remove_dc_offset=False),
    "nopow2": dict(num_mel_bins=40, round_to_power_of_two=False, use_log_fbank=False),
}


@pytest.fixture(scope="module")
def stored(fixtures_dir):
    return load_file(fixtures_dir / "features" / "fbank_before_rework.safetensors")


def _max_diff(a, b):
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", sorted(FBANK_CONFIGS))
def test_kaldi_fbank_unchanged(stored, name):
    waves = stored["wave16k"]
    batch = waves[:1] if name in ("cavmae", "lavish") else waves
    reference = stored[f"fbank_{name}"]
    assert _max_diff(kaldi_fbank(batch, channel=None, **FBANK_CONFIGS[name]), reference) <= BOUND * max(
        1.0, reference.abs().max().item() if name == "nopow2" else 1.0  # linear (no log) powers: relative bound
    )
    # one clip at a time gives the same numbers as the batch
    for row, wave in enumerate(batch):
        assert _max_diff(kaldi_fbank(wave, **FBANK_CONFIGS[name]), reference[row]) <= BOUND * max(
            1.0, reference[row].abs().max().item() if name == "nopow2" else 1.0
        )


def test_kaldi_fbank_long_batch_chunks_equal_per_clip(stored):
    # more frames than one chunk, several clips: the chunk boundaries must not show
    waves = torch.cat([stored["wave16k_long"]] * 3, dim=-1).repeat(3, 1)
    waves[1] = waves[1].flip(0)
    batched = kaldi_fbank(waves, channel=None, **FBANK_CONFIGS["cavmae"])
    for row in range(3):
        assert torch.equal(batched[row], kaldi_fbank(waves[row], **FBANK_CONFIGS["cavmae"]))


def test_feature_extractors_unchanged(stored):
    waves, long = stored["wave16k"], stored["wave16k_long"]
    cav = CavMaeFeatureExtractor(target_length=80)([waves[0], long[0]], sampling_rate=16000, return_tensors="pt")
    assert _max_diff(cav["input_values"], stored["fe_cavmae"]) <= BOUND
    cav44 = CavMaeFeatureExtractor(target_length=30)([stored["wave44k"][0]], sampling_rate=44100, return_tensors="pt")
    assert _max_diff(cav44["input_values"], stored["fe_cavmae_44k"]) <= BOUND
    lavish = LavishFeatureExtractor(num_segments=2, segment_seconds=0.5, num_mel_bins=64, target_length=100)(
        [torch.stack([long[0], long[0].flip(0)])], sampling_rate=16000, return_tensors="pt"
    )
    assert _max_diff(lavish["input_values"], stored["fe_lavish"]) <= BOUND
    dgsct = DgSctFeatureExtractor(num_segments=2, segment_seconds=0.125, tile_repeats=3)(
        list(stored["wave32k"]), sampling_rate=32000, return_tensors="pt"
    )
    # The stored DG-SCT values came from torch.stft; the extractor now uses torchlibrosa's DFT convolution (the
    # original's rounding, see tests/features/test_spectrogram.py), which moves them by 6.3e-5 dB here.
    assert _max_diff(dgsct["input_values"], stored["fe_dgsct"]) <= 1e-4
    # The torch.stft path: same STFT; the mel matrix is now librosa's to the bit (one float32 step apart in 1% of the
    # weights before), which moves dB values (|x| up to ~100) by one step, 3.8e-6; bound 1e-6 relative to 100.
    logmel = log_mel_spectrogram(stored["wave32k"], sampling_rate=32000, n_fft=1024, hop_length=320, n_mels=64,
                                 f_min=50.0, f_max=14000.0, stft="fft")
    assert _max_diff(logmel, stored["logmel_htsat"]) <= BOUND * 100


@pytest.mark.parametrize("name", ["cavmae", "hamming_nosnip", "blackman_magnitude", "povey_energy"])
def test_padded_batch_equals_fbank_then_pad_and_normalise(stored, name):
    from hf_av.features.kaldi import kaldi_fbank_padded

    options = FBANK_CONFIGS[name]
    long = torch.cat([stored["wave16k_long"][0]] * 3)  # 3.75 s: more frames than one chunk
    signals = [stored["wave16k"][0], long, stored["wave16k"][1], long.flip(0)[:7000]]
    for num_frames in (40, 60, 500):
        out = kaldi_fbank_padded(signals, num_frames, normalize=(-4.0, 3.5), padding_value=7.0, **options)
        assert out.shape[:2] == (4, num_frames)
        for row, signal in enumerate(signals):
            expected = (kaldi_fbank(signal, **options) - -4.0) / 3.5
            frames = min(num_frames, expected.shape[0])
            assert _max_diff(out[row, :frames], expected[:frames]) <= BOUND
            assert (out[row, frames:] == 7.0).all()


@pytest.mark.parametrize("stft", ["dft", "fft"])
@pytest.mark.parametrize("length,repeats,top_db", [(3200, 10, None), (3200, 3, 30.0), (3000, 4, None), (640, 2, None)])
def test_tiled_log_mel_equals_tiling_first(length, repeats, top_db, stft):
    segments = torch.randn(2, 3, length, generator=torch.Generator().manual_seed(length)) * 0.1
    options = dict(sampling_rate=32000, n_fft=1024, hop_length=320, n_mels=64, f_min=50.0, f_max=14000.0,
                   top_db=top_db, stft=stft)
    tiled_first = log_mel_spectrogram(segments.repeat(1, 1, repeats), **options)
    assert torch.equal(log_mel_spectrogram(segments, tile_repeats=repeats, **options), tiled_first)


def test_feature_extractors_do_not_depend_on_the_thread_count():
    """A 10-s clip gives the same features with 1 and 2 torch threads (the waveform mean was a float32 sum split
    over threads, which moved LAVisH fbank values by 2e-5)."""
    generator = torch.Generator().manual_seed(0)
    waves = [torch.randn(160000, generator=generator) * 0.1 for _ in range(2)]
    previous = torch.get_num_threads()
    try:
        for extractor in (CavMaeFeatureExtractor(), LavishFeatureExtractor(), DgSctFeatureExtractor()):
            rate = extractor.sampling_rate
            signals = [torch.randn(rate * 10, generator=generator) * 0.1 for _ in range(2)] if rate != 16000 else waves
            outputs = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                outputs.append(extractor(signals, sampling_rate=rate, return_tensors="pt")["input_values"])
            assert torch.equal(outputs[0], outputs[1]), type(extractor).__name__
    finally:
        torch.set_num_threads(previous)
