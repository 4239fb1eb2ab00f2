"""Kaldi-compatible log-mel filter bank, vectorised in torch.

Same semantics as ``torchaudio.compliance.kaldi.fbank`` (which CAV-MAE, LAVisH and AST call) without
importing torchaudio: frames are cut with one strided view, all frames of all signals go through one
real FFT and one matrix product with a cached mel matrix.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .validation import check_waveform

__all__ = ["kaldi_fbank", "kaldi_mel_banks", "kaldi_window", "kaldi_frame_params"]

# Kaldi floors power and log energies with the float32 machine epsilon, whatever the input dtype.
_EPSILON = torch.finfo(torch.float32).eps
_MILLISECONDS_TO_SECONDS = 0.001
_WINDOW_TYPES = ("hanning", "hamming", "povey", "rectangular", "blackman")


def kaldi_frame_params(
    sample_frequency: float, frame_length: float, frame_shift: float, round_to_power_of_two: bool
) -> tuple[int, int, int]:
    """Window size, window shift and FFT size in samples, rounded exactly as Kaldi does.

    The products are evaluated in Kaldi's order and truncated with ``int`` (so a 5.2 ms shift at
    16 kHz is ``int(83.2) = 83`` samples).
    """
    window_shift = int(sample_frequency * frame_shift * _MILLISECONDS_TO_SECONDS)
    window_size = int(sample_frequency * frame_length * _MILLISECONDS_TO_SECONDS)
    padded_window_size = 1 << (window_size - 1).bit_length() if round_to_power_of_two else window_size
    return window_size, window_shift, padded_window_size


@lru_cache(maxsize=32)
def _cached_window(window_type: str, window_size: int, blackman_coeff: float, dtype: torch.dtype) -> torch.Tensor:
    # Built directly in the signal's dtype, as Kaldi/torchaudio do: a float64 window cast to float32
    # differs by 1 ulp, which moves the near-silent low mel bins by ~1e-4 after the log.
    if window_type == "hanning":
        return torch.hann_window(window_size, periodic=False, dtype=dtype)
    if window_type == "hamming":
        return torch.hamming_window(window_size, periodic=False, alpha=0.54, beta=0.46, dtype=dtype)
    if window_type == "povey":
        # Kaldi's default: a Hann window raised to 0.85, non-zero at the edges.
        return torch.hann_window(window_size, periodic=False, dtype=dtype).pow(0.85)
    if window_type == "rectangular":
        return torch.ones(window_size, dtype=dtype)
    if window_type == "blackman":
        a = 2 * math.pi / (window_size - 1)
        n = torch.arange(window_size, dtype=dtype)
        return blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
    raise ValueError(f"Unknown window_type {window_type!r}; expected one of {_WINDOW_TYPES}.")


def kaldi_window(window_type: str, window_size: int, blackman_coeff: float = 0.42, dtype=torch.float32):
    """The analysis window Kaldi applies to each frame (symmetric, ``periodic=False``); cached per config."""
    return _cached_window(window_type, int(window_size), float(blackman_coeff), dtype)


def _mel_scale(freq):
    # Written as Kaldi writes it (log(1 + f/700), not log1p) so the float32 filters match bit for bit.
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


@lru_cache(maxsize=32)
def _cached_mel_banks(
    num_bins: int, padded_window_size: int, sample_frequency: float, low_freq: float, high_freq: float
) -> torch.Tensor:
    nyquist = 0.5 * sample_frequency
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(
            f"Bad mel range: low_freq={low_freq}, high_freq={high_freq} for sample_frequency={sample_frequency} "
            f"(need 0 <= low_freq < high_freq <= Nyquist {nyquist}; high_freq <= 0 counts from Nyquist)."
        )
    fft_bin_width = sample_frequency / padded_window_size
    mel_low, mel_high = _mel_scale(low_freq), _mel_scale(high_freq)
    mel_delta = (mel_high - mel_low) / (num_bins + 1)
    # float32 arithmetic on purpose: it is what the reference implementation computes.
    bin_index = torch.arange(num_bins, dtype=torch.float32).unsqueeze(1)
    left_mel = mel_low + bin_index * mel_delta
    center_mel = mel_low + (bin_index + 1.0) * mel_delta
    right_mel = mel_low + (bin_index + 2.0) * mel_delta
    mel = _mel_scale(fft_bin_width * torch.arange(padded_window_size // 2, dtype=torch.float32)).unsqueeze(0)
    up_slope = (mel - left_mel) / (center_mel - left_mel)
    down_slope = (right_mel - mel) / (right_mel - center_mel)
    banks = torch.clamp(torch.minimum(up_slope, down_slope), min=0.0)
    # Kaldi's banks stop one bin short of Nyquist; the Nyquist column of the spectrum gets weight 0.
    return torch.nn.functional.pad(banks, (0, 1))  # [num_bins, padded_window_size // 2 + 1]


def kaldi_mel_banks(
    num_mel_bins: int,
    padded_window_size: int,
    sample_frequency: float,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    dtype=torch.float32,
) -> torch.Tensor:
    """Kaldi triangular mel filters ``[num_mel_bins, padded_window_size // 2 + 1]`` (mel = 1127 ln(1 + f/700)).

    Built once per configuration and cached.
    """
    return _cached_mel_banks(
        int(num_mel_bins), int(padded_window_size), float(sample_frequency), float(low_freq), float(high_freq)
    ).to(dtype)


def _frames(signals: torch.Tensor, window_size: int, window_shift: int, snip_edges: bool) -> torch.Tensor:
    """[B, N] -> [B, num_frames, window_size] (a view when ``snip_edges``)."""
    num_samples = signals.shape[-1]
    if not snip_edges:
        # Kaldi centres frames on multiples of the shift and mirrors the signal at both ends
        # (the mirror includes the edge sample).
        num_frames = (num_samples + window_shift // 2) // window_shift
        pad = window_size // 2 - window_shift // 2
        reversed_signals = signals.flip(-1)
        if pad > 0:
            signals = torch.cat((reversed_signals[:, -pad:], signals, reversed_signals), dim=-1)
        else:
            signals = torch.cat((signals[:, -pad:], reversed_signals), dim=-1)
        return signals.unfold(-1, window_size, window_shift)[:, :num_frames]
    return signals.unfold(-1, window_size, window_shift)


def kaldi_fbank(
    waveform: torch.Tensor,
    *,
    sample_frequency: float = 16000.0,
    num_mel_bins: int = 23,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    window_type: str = "povey",
    blackman_coeff: float = 0.42,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_power: bool = True,
    use_log_fbank: bool = True,
    use_energy: bool = False,
    raw_energy: bool = True,
    energy_floor: float = 1.0,
    htk_compat: bool = False,
    subtract_mean: bool = False,
    dither: float = 0.0,
    vtln_warp: float = 1.0,
    channel: int | None = -1,
) -> torch.Tensor:
    """Kaldi filter-bank features, the same numbers as ``torchaudio.compliance.kaldi.fbank``.

    Args:
        waveform: float tensor. ``[N]``: one signal. ``[C, N]`` with an integer ``channel``: one multi-channel
            signal, channel ``max(channel, 0)`` is used (Kaldi's ``channel=-1`` means the first). ``[B, C, N]``
            with an integer ``channel``: a batch of multi-channel signals. ``[B, N]`` with ``channel=None``:
            a batch of mono signals of equal length, processed together.
        channel: see ``waveform``; ``None`` disables channel selection (every row is a signal).
        The other arguments are Kaldi's options with Kaldi's defaults (times in milliseconds). ``dither``
        must be 0 and ``vtln_warp`` 1 (random dithering and VTLN are not implemented).

    Returns:
        ``[num_frames, num_mel_bins (+1 with use_energy)]``, or ``[B, num_frames, ...]`` for batched input, in
        the input's floating dtype.
    """
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"kaldi_fbank expects a torch.Tensor, got {type(waveform).__name__}.")
    if dither != 0.0:
        raise ValueError("kaldi_fbank: dither must be 0.0 (random dithering is not implemented).")
    if vtln_warp != 1.0:
        raise ValueError("kaldi_fbank: vtln_warp must be 1.0 (VTLN warping is not implemented).")
    if window_type not in _WINDOW_TYPES:
        raise ValueError(f"Unknown window_type {window_type!r}; expected one of {_WINDOW_TYPES}.")
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise ValueError(f"preemphasis_coefficient must be in [0, 1], got {preemphasis_coefficient}.")
    if sample_frequency <= 0:
        raise ValueError(f"sample_frequency must be positive, got {sample_frequency}.")

    squeeze_batch = False
    if channel is None:
        if waveform.ndim == 1:
            signals, squeeze_batch = waveform.unsqueeze(0), True
        elif waveform.ndim == 2:
            signals = waveform
        else:
            raise ValueError(f"With channel=None kaldi_fbank expects [N] or [B, N], got shape {tuple(waveform.shape)}.")
    else:
        index = max(int(channel), 0)
        if waveform.ndim == 1:
            signals, squeeze_batch = waveform.unsqueeze(0), True
        elif waveform.ndim in (2, 3):
            if index >= waveform.shape[-2]:
                raise ValueError(f"channel {channel} requested but the waveform has {waveform.shape[-2]} channel(s).")
            signals = waveform[..., index, :]
            if waveform.ndim == 2:
                signals, squeeze_batch = signals.unsqueeze(0), True
        else:
            raise ValueError(f"kaldi_fbank expects [N], [C, N] or [B, C, N], got shape {tuple(waveform.shape)}.")
    if not signals.is_floating_point():
        raise ValueError(f"kaldi_fbank expects a floating-point waveform, got {signals.dtype}.")
    check_waveform(signals, name="kaldi_fbank input")

    window_size, window_shift, padded_window_size = kaldi_frame_params(
        sample_frequency, frame_length, frame_shift, round_to_power_of_two
    )
    if window_size < 2:
        raise ValueError(f"frame_length {frame_length} ms gives a window of {window_size} samples (need >= 2).")
    if window_shift <= 0:
        raise ValueError(f"frame_shift {frame_shift} ms gives a shift of {window_shift} samples (need > 0).")
    num_samples = signals.shape[-1]
    if num_samples < window_size:
        raise ValueError(
            f"Audio too short for Kaldi fbank: {num_samples} samples < one {frame_length} ms window "
            f"({window_size} samples at {sample_frequency} Hz)."
        )

    dtype = signals.dtype
    frames = _frames(signals, window_size, window_shift, snip_edges)  # [B, T, W] (strided view)
    if remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    elif preemphasis_coefficient != 0.0:
        frames = frames.contiguous()
    if use_energy and raw_energy:
        log_energy = _log_energy(frames, energy_floor)
    # The windowed frames are written straight into a zero-padded FFT buffer (no extra pad copy).
    fft_input = frames.new_zeros(*frames.shape[:-1], padded_window_size)
    windowed = fft_input[..., :window_size]
    if preemphasis_coefficient != 0.0:
        # x[n] - k * x[n-1] inside each frame, with x[-1] := x[0] (Kaldi's replicate padding); multiply then
        # subtract as two roundings, exactly like the reference.
        scaled = frames * preemphasis_coefficient
        torch.sub(frames[..., 1:], scaled[..., :-1], out=windowed[..., 1:])
        torch.sub(frames[..., :1], scaled[..., :1], out=windowed[..., :1])
        windowed.mul_(kaldi_window(window_type, window_size, blackman_coeff, dtype=dtype).to(frames.device))
    else:
        torch.mul(frames, kaldi_window(window_type, window_size, blackman_coeff, dtype=dtype).to(frames.device), out=windowed)
    if use_energy and not raw_energy:
        log_energy = _log_energy(windowed, energy_floor)

    spectrum = torch.fft.rfft(fft_input, dim=-1)
    if use_power:
        # |X|^2 from the real and imaginary parts: avoids the slow complex abs (hypot) and its sqrt.
        spectrum = spectrum.real.square() + spectrum.imag.square()
    else:
        spectrum = spectrum.abs()
    banks = kaldi_mel_banks(num_mel_bins, padded_window_size, sample_frequency, low_freq, high_freq, dtype=dtype)
    features = torch.matmul(spectrum, banks.to(spectrum.device).T)
    if use_log_fbank:
        features = torch.clamp(features, min=_EPSILON).log()
    if use_energy:
        energy = log_energy.unsqueeze(-1)
        features = torch.cat((features, energy) if htk_compat else (energy, features), dim=-1)
    if subtract_mean:
        features = features - features.mean(dim=-2, keepdim=True)
    return features.squeeze(0) if squeeze_batch else features


def _log_energy(frames: torch.Tensor, energy_floor: float) -> torch.Tensor:
    log_energy = torch.clamp(frames.pow(2).sum(-1), min=_EPSILON).log()
    if energy_floor == 0.0:
        return log_energy
    return torch.clamp(log_energy, min=math.log(energy_floor))
