"""librosa-style log-mel spectrogram (the torchlibrosa front-end of HTS-AT, used by DG-SCT).

torchlibrosa computes an STFT with a periodic Hann window and centre/reflect padding, takes the power,
applies librosa's Slaney mel filters and converts to decibels with ``10 log10(max(x, amin))`` minus
``10 log10(max(amin, ref))``. This module does the same with one batched ``torch.stft``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .kaldi import run_chunks_in_parallel
from .validation import check_waveform

__all__ = ["slaney_mel_filter_bank", "log_mel_spectrogram", "hz_to_mel_slaney", "mel_to_hz_slaney"]

# Slaney's auditory-toolbox mel scale (librosa's default, htk=False): linear below 1 kHz, log above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0
# Frames per STFT call (see log_mel_spectrogram).
_CHUNK_FRAMES = 2048


def hz_to_mel_slaney(freq: torch.Tensor) -> torch.Tensor:
    mels = freq / _F_SP
    log_region = freq >= _MIN_LOG_HZ
    return torch.where(log_region, _MIN_LOG_MEL + torch.log(freq.clamp(min=1e-10) / _MIN_LOG_HZ) / _LOG_STEP, mels)


def mel_to_hz_slaney(mels: torch.Tensor) -> torch.Tensor:
    freqs = _F_SP * mels
    log_region = mels >= _MIN_LOG_MEL
    return torch.where(log_region, _MIN_LOG_HZ * torch.exp(_LOG_STEP * (mels - _MIN_LOG_MEL)), freqs)


@lru_cache(maxsize=32)
def _cached_slaney_mel(sampling_rate: float, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    fft_freqs = torch.linspace(0, sampling_rate / 2, 1 + n_fft // 2, dtype=torch.float64)
    mel_edges = torch.linspace(
        float(hz_to_mel_slaney(torch.tensor(f_min, dtype=torch.float64))),
        float(hz_to_mel_slaney(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz_edges = mel_to_hz_slaney(mel_edges)
    widths = hz_edges[1:] - hz_edges[:-1]
    ramps = hz_edges.unsqueeze(1) - fft_freqs.unsqueeze(0)  # [n_mels + 2, n_freqs]
    lower = -ramps[:-2] / widths[:-1].unsqueeze(1)
    upper = ramps[2:] / widths[1:].unsqueeze(1)
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    # 'slaney' area normalisation: each triangle integrates to a constant.
    weights = weights * (2.0 / (hz_edges[2:] - hz_edges[:-2])).unsqueeze(1)
    return weights.to(torch.float32)  # librosa returns float32 filters


def slaney_mel_filter_bank(
    sampling_rate: float, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """librosa ``filters.mel(htk=False, norm='slaney')``: ``[n_mels, n_fft // 2 + 1]`` float32, cached."""
    f_max = sampling_rate / 2 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sampling_rate / 2:
        raise ValueError(f"Need 0 <= f_min < f_max <= sampling_rate / 2, got f_min={f_min}, f_max={f_max}.")
    return _cached_slaney_mel(float(sampling_rate), int(n_fft), int(n_mels), float(f_min), float(f_max))


def log_mel_spectrogram(
    waveform: torch.Tensor,
    *,
    sampling_rate: float,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    win_length: int | None = None,
    f_min: float = 0.0,
    f_max: float | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
    amin: float = 1e-10,
    ref: float = 1.0,
    top_db: float | None = None,
    tile_repeats: int = 1,
) -> torch.Tensor:
    """Power log-mel spectrogram in dB, as torchlibrosa ``Spectrogram`` + ``LogmelFilterBank``.

    Args:
        waveform: float tensor ``[..., N]`` (any leading batch dims, all signals the same length).
        sampling_rate, n_fft, hop_length, win_length, n_mels, f_min, f_max: STFT and Slaney-mel settings.
        center, pad_mode: pad ``n_fft // 2`` on both sides before framing (librosa default).
        amin, ref, top_db: decibel conversion ``10 log10(max(S, amin)) - 10 log10(max(amin, ref))``,
            then optionally floor at ``max - top_db`` per signal (HTS-AT uses ``top_db=None``).
        tile_repeats: the spectrogram of ``waveform`` repeated ``tile_repeats`` times along time (DG-SCT tiles
            each 1-s segment ten times), without building it: when the segment length is a multiple of
            ``hop_length`` the frames of the tiled signal repeat, so only the frames of two tiles are computed
            and the rest are copies (the same numbers as tiling first).

    Returns:
        ``[..., num_frames, n_mels]`` float32 with ``num_frames = 1 + N // hop_length`` when centred.
    """
    check_waveform(waveform, name="log_mel_spectrogram input")
    if int(tile_repeats) != tile_repeats or tile_repeats < 1:
        raise ValueError(f"tile_repeats must be a positive integer, got {tile_repeats!r}.")
    if tile_repeats > 1:
        return _tiled_log_mel(
            waveform, int(tile_repeats), sampling_rate=sampling_rate, n_fft=n_fft, hop_length=hop_length,
            n_mels=n_mels, win_length=win_length, f_min=f_min, f_max=f_max, center=center, pad_mode=pad_mode,
            amin=amin, ref=ref, top_db=top_db,
        )
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}.")
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}.")
    leading = waveform.shape[:-1]
    signals = waveform.reshape(-1, waveform.shape[-1]).to(torch.float32)
    if center and signals.shape[-1] <= n_fft // 2 and pad_mode == "reflect":
        raise ValueError(
            f"Audio too short for a centred STFT with reflect padding: {signals.shape[-1]} samples, "
            f"need more than n_fft // 2 = {n_fft // 2}."
        )
    # Periodic Hann (scipy get_window('hann', fftbins=True)), centred in n_fft like librosa's pad_center.
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float32, device=signals.device)
    mel = slaney_mel_filter_bank(sampling_rate, n_fft, n_mels, f_min, f_max).to(signals.device)
    num_frames = 1 + (signals.shape[-1] if center else signals.shape[-1] - n_fft) // hop_length
    # A few signals at a time: the complex STFT of a whole batch (e.g. 100 x 1001 x 513) is hundreds of MB,
    # which costs more in page faults and memory traffic than the FFTs themselves.
    step = max(1, _CHUNK_FRAMES // max(num_frames, 1))
    log_mel = torch.empty(signals.shape[0], num_frames, n_mels, dtype=torch.float32, device=signals.device)

    def work(starts):
        for start in starts:
            stft = torch.stft(
                signals[start : start + step],
                n_fft=n_fft,
                hop_length=hop_length,
                win_length=win_length,
                window=window,
                center=center,
                pad_mode=pad_mode,
                return_complex=True,
            )  # [b, F, T]
            power = stft.real.pow(2) + stft.imag.pow(2)
            mel_power = torch.matmul(power.transpose(-1, -2), mel.T)  # [b, T, n_mels]
            chunk = log_mel[start : start + step]
            torch.log10(torch.clamp(mel_power, min=amin), out=chunk)
            chunk.mul_(10.0).sub_(10.0 * math.log10(max(amin, ref)))

    run_chunks_in_parallel(work, list(range(0, signals.shape[0], step)))
    if top_db is not None:
        log_mel = _floor_below_peak(log_mel, top_db)
    return log_mel.reshape(*leading, *log_mel.shape[-2:])


def _floor_below_peak(log_mel: torch.Tensor, top_db: float) -> torch.Tensor:
    if top_db < 0:
        raise ValueError(f"top_db must be non-negative, got {top_db}.")
    peak = log_mel.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(log_mel, peak - top_db)


def _tiled_log_mel(waveform: torch.Tensor, repeats: int, **options) -> torch.Tensor:
    """Log-mel of ``waveform`` tiled ``repeats`` times, from a copy tiled only as often as needed.

    With centre padding of ``pad = n_fft // 2``, frame ``j`` of a signal tiled from a segment of ``L`` samples
    (``L`` a multiple of the hop) sees only tiled samples when ``first <= j <= last`` (``first = ceil(pad / hop)``,
    ``last = (N + pad - n_fft) // hop``); those frames repeat with period ``L / hop``. The frames before ``first``
    and after ``last`` see the reflected edges, which are the same for any number of tiles. So a signal of
    ``r < repeats`` tiles whose interior still holds one whole period gives every distinct frame.
    """
    length, hop, n_fft = waveform.shape[-1], options["hop_length"], options["n_fft"]
    period = length // hop
    pad = n_fft // 2
    first = -(-pad // hop)

    def last_interior(tiles: int) -> int:
        return (tiles * length + pad - n_fft) // hop

    short = next((r for r in range(2, repeats) if last_interior(r) >= first + period - 1), None)
    if length % hop or not options["center"] or short is None:
        return log_mel_spectrogram(waveform.repeat(*([1] * (waveform.ndim - 1)), repeats), **options)
    top_db = options["top_db"]
    options = {**options, "top_db": None}  # the floor is per whole signal: applied below
    frames = log_mel_spectrogram(waveform.repeat(*([1] * (waveform.ndim - 1)), short), **options)
    num_frames = 1 + repeats * length // hop
    shift = (repeats - short) * period  # frame j of the full signal's tail is frame j - shift of the short one
    index = torch.arange(num_frames)
    index = torch.where(
        index < first + period,
        index,
        torch.where(index > last_interior(repeats), index - shift, first + (index - first) % period),
    )
    log_mel = frames.index_select(-2, index)
    if top_db is not None:
        log_mel = _floor_below_peak(log_mel, top_db)
    return log_mel
