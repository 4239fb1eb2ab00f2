"""The Kaldi fbank algorithm as plain per-clip torch ops: the in-run peer of ``hf_av.features.kaldi``.

Follows the algorithm of ``torchaudio.compliance.kaldi.fbank`` (torchaudio is not installed here) step by step for
ONE signal at a time: strided frames, DC removal, pre-emphasis with replicate padding, symmetric window, zero
padding to a power of two, ``rfft`` power spectrum, float32 triangular mel banks (Nyquist column 0), ``mm``,
log with the float32 epsilon floor. Only what CAV-MAE / AST use is implemented (no dither, VTLN or energy).
"""

from __future__ import annotations

import math

import torch

_EPS = torch.tensor(torch.finfo(torch.float).eps)


def _next_power_of_two(x: int) -> int:
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


def _window(window_type: str, size: int, dtype: torch.dtype) -> torch.Tensor:
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False, dtype=dtype)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46, dtype=dtype)
    if window_type == "povey":
        return torch.hann_window(size, periodic=False, dtype=dtype).pow(0.85)
    if window_type == "rectangular":
        return torch.ones(size, dtype=dtype)
    raise ValueError(f"reference fbank: unsupported window {window_type!r}")


def _mel(freq):
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


def mel_banks(num_bins: int, padded_size: int, sample_frequency: float, low_freq: float, high_freq: float) -> torch.Tensor:
    """``[num_bins, padded_size // 2]`` triangular filters on the mel scale, computed in float32."""
    nyquist = 0.5 * sample_frequency
    if high_freq <= 0.0:
        high_freq += nyquist
    bin_width = sample_frequency / padded_size
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + index * delta
    center = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    mel = _mel(bin_width * torch.arange(padded_size / 2)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    return torch.max(torch.zeros(1), torch.min(up, down))


def reference_fbank(
    waveform: torch.Tensor,
    sample_frequency: float = 16000.0,
    num_mel_bins: int = 128,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    window_type: str = "hanning",
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> torch.Tensor:
    """Log-mel fbank ``[num_frames, num_mel_bins]`` of one ``[N]`` (or ``[1, N]``) signal, snip_edges=True."""
    if waveform.ndim == 2:
        waveform = waveform[0]
    dtype = waveform.dtype
    shift = int(sample_frequency * frame_shift * 0.001)
    size = int(sample_frequency * frame_length * 0.001)
    padded = _next_power_of_two(size)
    num_frames = 1 + (waveform.shape[0] - size) // shift
    stride = waveform.stride(0)
    frames = waveform.as_strided((num_frames, size), (shift * stride, stride))
    if remove_dc_offset:
        frames = frames - frames.mean(dim=1).unsqueeze(1)
    if preemphasis_coefficient != 0.0:
        shifted = torch.nn.functional.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)
        frames = frames - preemphasis_coefficient * shifted[:, :-1]
    frames = frames * _window(window_type, size, dtype).unsqueeze(0)
    if padded != size:
        frames = torch.nn.functional.pad(frames.unsqueeze(0), (0, padded - size), mode="constant", value=0).squeeze(0)
    spectrum = torch.fft.rfft(frames).abs().pow(2.0)
    banks = mel_banks(num_mel_bins, padded, sample_frequency, low_freq, high_freq).to(dtype)
    banks = torch.nn.functional.pad(banks, (0, 1), mode="constant", value=0)
    energies = torch.mm(spectrum, banks.T)
    return torch.max(energies, _EPS.to(dtype)).log()
