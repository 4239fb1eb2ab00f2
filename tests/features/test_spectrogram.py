import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from hf_av.features import log_mel_spectrogram, slaney_mel_filter_bank
from hf_av.features.spectrogram import torchlibrosa_dft_weights

BOUND = 1e-5  # dB, fp32
HTSAT = dict(sampling_rate=32000, hop_length=320, f_min=50.0, f_max=14000.0)  # esc-50 / audioset backbones


def _torchlibrosa_log_mel(tiled: torch.Tensor, n_fft: int, n_mels: int) -> torch.Tensor:
    """torchlibrosa 0.1.0 `Spectrogram` + `LogmelFilterBank` (ref 1, amin 1e-10, top_db None) as HTS-AT runs them:
    reflect-pad, two strided conv1d with the windowed DFT matrix (weights built as its `STFT.__init__` does),
    `real ** 2 + imag ** 2` on the [B, 1, frames, bins] views, `matmul` with melW [bins, mels], 10 log10."""
    rows, cols = np.meshgrid(np.arange(n_fft), np.arange(n_fft))
    dft = np.power(np.exp(-2 * np.pi * 1j / n_fft), rows * cols)
    try:
        from scipy.signal import get_window

        window = get_window("hann", n_fft, fftbins=True)
    except ImportError:  # the same periodic Hann, up to float64 rounding
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    bins = dft[:, : n_fft // 2 + 1] * window[:, None]
    conv_real = torch.Tensor(np.real(bins).T)[:, None, :]
    conv_imag = torch.Tensor(np.imag(bins).T)[:, None, :]
    mel_weight = slaney_mel_filter_bank(HTSAT["sampling_rate"], n_fft, n_mels, HTSAT["f_min"], HTSAT["f_max"]).T
    signal = F.pad(tiled[:, None, :], (n_fft // 2, n_fft // 2), mode="reflect")
    real = F.conv1d(signal, conv_real, stride=HTSAT["hop_length"])[:, None].transpose(2, 3)
    imag = F.conv1d(signal, conv_imag, stride=HTSAT["hop_length"])[:, None].transpose(2, 3)
    mel_power = torch.matmul(real**2 + imag**2, mel_weight)
    return (10.0 * torch.log10(torch.clamp(mel_power, min=1e-10)))[:, 0]


def test_htsat_logmel_matches_dg_sct_fixture(fixtures_dir):
    config = json.loads((fixtures_dir / "dg-sct" / "config.json").read_text())
    io = torch.load(fixtures_dir / "dg-sct" / "ave_tiny_io.pt", weights_only=True)
    wave, reference = io["wave"], io["intermediates"]["htsat_logmel"]  # (2, 10, 3200), (20, 1, 11, 32)
    options = dict(HTSAT, n_fft=config["htsat"]["n_fft"], n_mels=config["htsat"]["mel_bins"])
    log_mel = log_mel_spectrogram(wave.reshape(-1, wave.shape[-1]), **options)
    assert log_mel.unsqueeze(1).shape == reference.shape
    # dB values span -60..-12; one of 7040 values is one float32 step (1.9e-6) away, the rest are equal.
    assert (log_mel.unsqueeze(1) - reference).abs().max() <= BOUND
    # torch.stft (stft="fft") rounds differently: 1.1e-4 dB here, which is why "dft" is the default.
    fft = log_mel_spectrogram(wave.reshape(-1, wave.shape[-1]), stft="fft", **options)
    assert (fft.unsqueeze(1) - reference).abs().max() > BOUND


@pytest.mark.parametrize("fixture", ["dg-sct/ave_tiny_state_dict.pth", "dg-sct-avs/avs_s4_tiny_state_dict.pth"])
def test_front_end_weights_equal_checkpoint_weights(fixtures_dir, fixture):
    state = torch.load(fixtures_dir / fixture, weights_only=True)
    mel = state["htsat.logmel_extractor.melW"]  # [bins, mels], built by librosa.filters.mel
    n_fft = 2 * (mel.shape[0] - 1)
    assert torch.equal(slaney_mel_filter_bank(32000, n_fft, mel.shape[1], 50, 14000).T, mel)
    weights = torchlibrosa_dft_weights(n_fft)
    bins = n_fft // 2 + 1
    assert torch.equal(weights[:bins], state["htsat.spectrogram_extractor.stft.conv_real.weight"])
    assert torch.equal(weights[bins:], state["htsat.spectrogram_extractor.stft.conv_imag.weight"])


def test_real_length_tiled_segments_match_torchlibrosa(fixtures_dir):
    """Release settings (n_fft 1024, 64 mels) on real audio: 1-s segments tiled to 10 s, as DG-SCT's loaders feed
    the model. Ours computes each distinct frame once; the reference runs torchlibrosa's convolution on the whole
    tiled signals."""
    wave = load_file(fixtures_dir / "processors" / "dg-sct" / "processor_fixture.safetensors")["wave"]
    segments = wave[32000:96000].reshape(2, 32000)
    reference = _torchlibrosa_log_mel(segments.repeat(1, 10), n_fft=1024, n_mels=64)  # [2, 1001, 64]
    ours = log_mel_spectrogram(segments, tile_repeats=10, n_fft=1024, n_mels=64, **HTSAT)
    assert ours.shape == reference.shape == (2, 1001, 64)
    assert (ours - reference).abs().max() <= BOUND  # achieved: 0.0 (dB range -92..12)
    fft = log_mel_spectrogram(segments, tile_repeats=10, n_fft=1024, n_mels=64, stft="fft", **HTSAT)
    assert (fft - reference).abs().max() > BOUND  # 4.6e-4: the bound tells the two STFTs apart


def test_single_short_signal_rounds_like_a_batch():
    # torch would run a convolution this small with batch 1 through im2col + GEMM (another summation order).
    x = 0.1 * torch.randn(3, 2000, generator=torch.Generator().manual_seed(1))
    options = dict(HTSAT, n_fft=256, n_mels=32)
    batch = log_mel_spectrogram(x, **options)
    for row in range(3):
        assert torch.equal(log_mel_spectrogram(x[row], **options), batch[row])


def test_log_mel_batch_dims_and_top_db():
    x = torch.randn(2, 3, 4000, generator=torch.Generator().manual_seed(0))
    for stft in ("dft", "fft"):
        out = log_mel_spectrogram(x, sampling_rate=16000, n_fft=512, hop_length=160, n_mels=40, top_db=20.0, stft=stft)
        assert out.shape == (2, 3, 26, 40)
        assert (out.amax(dim=(-2, -1)) - out.amin(dim=(-2, -1)) <= 20.0 + 1e-4).all()


def test_bad_settings():
    x = torch.randn(4000)
    with pytest.raises(ValueError, match="stft must be one of"):
        log_mel_spectrogram(x, sampling_rate=16000, n_fft=512, hop_length=160, n_mels=40, stft="matrix")
    with pytest.raises(ValueError, match="uncentred STFT"):
        log_mel_spectrogram(x[:100], sampling_rate=16000, n_fft=512, hop_length=160, n_mels=40, center=False)


@pytest.mark.parametrize("task", ["avs", "avvp"])
def test_task_fixture_waveforms_match_their_checkpoints_front_end(fixtures_dir, task):
    """The AVS (5 frames, each 0.05-s segment tiled 5x) and AVVP fixture waveforms: our log-mel, from the untiled
    segments where the fixture tiled them, equals the conv1d log-mel made with the checkpoint's own STFT / mel weights
    (achieved: 0.0)."""
    from tests.dg_sct.original_front_end import original_log_mel

    folder = fixtures_dir / f"dg-sct-{task}"
    state = torch.load(next(folder.glob("*_state_dict.pth")), weights_only=True)
    io = torch.load(next(folder.glob("*_io.pt")), weights_only=True)
    wave = io["wave"] if task == "avs" else io["audio"]
    audio = json.loads((folder / "config.json").read_text())["htsat"]
    options = dict(HTSAT, n_fft=audio["n_fft"], n_mels=audio["mel_bins"])
    if task == "avs":
        segment = wave.shape[-1] // 5
        assert torch.equal(wave, wave[..., :segment].repeat(1, 1, 5))
        ours = log_mel_spectrogram(wave[..., :segment], tile_repeats=5, **options)
    else:
        ours = log_mel_spectrogram(wave, **options)
    assert (ours - original_log_mel(wave, state)).abs().max() <= BOUND
