import json

import torch

from hf_av.features import log_mel_spectrogram, slaney_mel_filter_bank


def test_htsat_logmel_matches_dg_sct_fixture(fixtures_dir):
    config = json.loads((fixtures_dir / "dg-sct" / "config.json").read_text())
    io = torch.load(fixtures_dir / "dg-sct" / "ave_tiny_io.pt", weights_only=True)
    wave, reference = io["wave"], io["intermediates"]["htsat_logmel"]  # (2, 10, 3200), (20, 1, 11, 32)
    # esc-50 backbone: 32 kHz, hop 320 (forced by MMIL_Net); n_fft/mel from the config; fmin/fmax esc_config defaults.
    log_mel = log_mel_spectrogram(
        wave.reshape(-1, wave.shape[-1]),
        sampling_rate=32000,
        n_fft=config["htsat"]["n_fft"],
        hop_length=320,
        n_mels=config["htsat"]["mel_bins"],
        f_min=50,
        f_max=14000,
    )
    assert log_mel.unsqueeze(1).shape == reference.shape
    # dB values span +-60; achieved max abs diff 1.14e-4 (float32 STFT vs torchlibrosa's conv1d DFT).
    assert (log_mel.unsqueeze(1) - reference).abs().max() < 2e-4


def test_slaney_filters_equal_checkpoint_weights(fixtures_dir):
    state = torch.load(fixtures_dir / "dg-sct" / "ave_tiny_state_dict.pth", weights_only=True)
    filters = slaney_mel_filter_bank(32000, 256, 32, 50, 14000)
    assert (filters.T - state["htsat.logmel_extractor.melW"]).abs().max() < 1e-8


def test_log_mel_batch_dims_and_top_db():
    x = torch.randn(2, 3, 4000, generator=torch.Generator().manual_seed(0))
    out = log_mel_spectrogram(x, sampling_rate=16000, n_fft=512, hop_length=160, n_mels=40, top_db=20.0)
    assert out.shape == (2, 3, 26, 40)
    assert (out.amax(dim=(-2, -1)) - out.amin(dim=(-2, -1)) <= 20.0 + 1e-4).all()
