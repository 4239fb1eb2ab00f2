"""librosa-style log-mel spectrogram (the torchlibrosa front-end of HTS-AT, used by DG-SCT).

torchlibrosa computes an STFT with a periodic Hann window and centre/reflect padding, takes the power,
applies librosa's Slaney mel filters and converts to decibels with ``10 log10(max(x, amin))`` minus
``10 log10(max(amin, ref))``. Its STFT is a ``conv1d`` whose weights are the windowed DFT matrix rounded to
float32, i.e. every bin is a plain float32 sum over the ``n_fft`` samples (oneDNN's direct convolution adds them
one fused multiply-add at a time, in sample order). Where a frame's bins nearly cancel, that sum's rounding is
large relative to the bin (``1e-3`` relative), and after the mel product it moves the dB values by 1e-4 to 5e-4;
an FFT rounds differently. So the default here is the same convolution with the same float32 weights and the same
mel matrix (built with librosa's own float64/float32 steps), which gives torchlibrosa's numbers, not merely
close ones; ``stft="fft"`` keeps the faster ``torch.stft`` for callers that do not need the original's rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

from .kaldi import run_chunks_in_parallel
from .validation import check_waveform

__all__ = [
    "slaney_mel_filter_bank",
    "log_mel_spectrogram",
    "hz_to_mel_slaney",
    "mel_to_hz_slaney",
    "torchlibrosa_dft_weights",
]

# Slaney's auditory-toolbox mel scale (librosa's default, htk=False): linear below 1 kHz, log above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0
# Frames per STFT call (see log_mel_spectrogram).
_CHUNK_FRAMES = 2048
_STFT_METHODS = ("dft", "fft")
# torch runs a convolution through oneDNN for a batch of two or more, or for a single input above this many
# samples; below, it uses im2col + GEMM, whose additions come in another order (a different rounding).
_ONEDNN_MIN_SINGLE_INPUT = 20480


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
    # librosa.filters.mel step by step in NumPy: float64 ramps stored into a float32 array, then scaled in float64
    # by the Slaney area factor and stored again (two roundings; one rounding differs in ~1% of the weights).
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sampling_rate)
    mel_edges = np.linspace(_hz_to_mel_scalar(f_min), _hz_to_mel_scalar(f_max), n_mels + 2)
    hz_edges = _F_SP * mel_edges
    log_region = mel_edges >= _MIN_LOG_MEL
    hz_edges[log_region] = _MIN_LOG_HZ * np.exp(_NP_LOG_STEP * (mel_edges[log_region] - _MIN_LOG_MEL))
    widths = np.diff(hz_edges)
    ramps = np.subtract.outer(hz_edges, fft_freqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for band in range(n_mels):
        rising = -ramps[band] / widths[band]
        falling = ramps[band + 2] / widths[band + 1]
        weights[band] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (hz_edges[2 : n_mels + 2] - hz_edges[:n_mels]))[:, np.newaxis]  # 'slaney' area norm
    return torch.from_numpy(weights)


_NP_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel_scalar(freq: float) -> float:
    if freq >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + np.log(np.float64(freq) / _MIN_LOG_HZ) / _NP_LOG_STEP
    return np.float64(freq) / _F_SP


@lru_cache(maxsize=8)
def _cached_dft_weights(n_fft: int, win_length: int) -> torch.Tensor:
    # torchlibrosa.stft.STFT.__init__: the complex DFT matrix as NumPy's power of the root of unity, times the
    # periodic Hann window (scipy's general_cosine form, centred in n_fft), rounded to float32 once.
    rows, cols = np.meshgrid(np.arange(n_fft), np.arange(n_fft))
    dft = np.power(np.exp(-2 * np.pi * 1j / n_fft), rows * cols)
    angles = np.linspace(-np.pi, np.pi, win_length + 1)
    hann = np.zeros(win_length + 1)
    hann += 0.5 * np.cos(0 * angles)
    hann += 0.5 * np.cos(1 * angles)
    window = np.zeros(n_fft)
    offset = (n_fft - win_length) // 2
    window[offset : offset + win_length] = hann[:-1]
    windowed = dft[:, : n_fft // 2 + 1] * window[:, None]  # [sample, bin]
    weights = np.concatenate([np.real(windowed).T, np.imag(windowed).T]).astype(np.float32)
    return torch.from_numpy(weights).unsqueeze(1)


@lru_cache(maxsize=8)
def _dft_weights_of_bins(n_fft: int, win_length: int, low: int, high: int) -> torch.Tensor:
    """The real then imaginary rows of bins ``[low, high)`` of :func:`torchlibrosa_dft_weights`."""
    weights, bins = _cached_dft_weights(n_fft, win_length), n_fft // 2 + 1
    return torch.cat([weights[low:high], weights[bins + low : bins + high]]).contiguous()


def torchlibrosa_dft_weights(n_fft: int, win_length: int | None = None) -> torch.Tensor:
    """torchlibrosa's STFT convolution weights, ``[2 * (n_fft // 2 + 1), 1, n_fft]`` float32: the rows of
    ``conv_real.weight`` then those of ``conv_imag.weight`` (periodic Hann window), cached."""
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}.")
    return _cached_dft_weights(int(n_fft), int(win_length))


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
    stft: str = "dft",
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
            ``hop_length`` the frames of the tiled signal repeat, so only the distinct frames are computed
            and the rest are copies (the same numbers as tiling first).
        stft: ``"dft"`` (default): torchlibrosa's STFT, a float32 convolution with the windowed DFT matrix
            (:func:`torchlibrosa_dft_weights`), which reproduces its rounding (needs torch's oneDNN CPU
            convolution, which the original ran too); ``"fft"``: ``torch.stft``, ~1.5x faster, differs from
            torchlibrosa by float32 rounding (up to ~1e-4 dB in bins whose terms cancel).

    Returns:
        ``[..., num_frames, n_mels]`` float32 with ``num_frames = 1 + N // hop_length`` when centred.
    """
    check_waveform(waveform, name="log_mel_spectrogram input")
    if stft not in _STFT_METHODS:
        raise ValueError(f"stft must be one of {_STFT_METHODS}, got {stft!r}.")
    if int(tile_repeats) != tile_repeats or tile_repeats < 1:
        raise ValueError(f"tile_repeats must be a positive integer, got {tile_repeats!r}.")
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}.")
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}.")
    options = dict(
        sampling_rate=sampling_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, win_length=win_length,
        f_min=f_min, f_max=f_max, center=center, pad_mode=pad_mode, amin=amin, ref=ref, stft=stft,
    )
    leading = waveform.shape[:-1]
    signals = waveform.reshape(-1, waveform.shape[-1]).to(torch.float32)
    if tile_repeats > 1:
        log_mel = _tiled_log_mel(signals, int(tile_repeats), options)
    else:
        padded = _pad_signals(signals, n_fft, center, pad_mode)
        log_mel = _log_mel_of_frames(padded, [(0, 1 + (padded.shape[-1] - n_fft) // hop_length)], options)
    if top_db is not None:
        log_mel = _floor_below_peak(log_mel, top_db)
    return log_mel.reshape(*leading, *log_mel.shape[-2:])


def _pad_signals(signals: torch.Tensor, n_fft: int, center: bool, pad_mode: str) -> torch.Tensor:
    """``[B, N]`` -> ``[B, N + 2 * (n_fft // 2)]`` when centred (the framing input of the STFT)."""
    if not center:
        if signals.shape[-1] < n_fft:
            raise ValueError(f"Audio too short for an uncentred STFT: {signals.shape[-1]} samples < n_fft = {n_fft}.")
        return signals
    if signals.shape[-1] <= n_fft // 2 and pad_mode == "reflect":
        raise ValueError(
            f"Audio too short for a centred STFT with reflect padding: {signals.shape[-1]} samples, "
            f"need more than n_fft // 2 = {n_fft // 2}."
        )
    return F.pad(signals.unsqueeze(1), (n_fft // 2, n_fft // 2), mode=pad_mode).squeeze(1)


def _log_mel_of_frames(padded: torch.Tensor, frame_ranges: list, options: dict) -> torch.Tensor:
    """Log-mel of the frames ``[start, stop)`` of each range (frame ``j`` = ``padded[..., j * hop : j * hop +
    n_fft]``), concatenated along time: ``[B, total_frames, n_mels]``."""
    n_fft, hop = options["n_fft"], options["hop_length"]
    mel = slaney_mel_filter_bank(options["sampling_rate"], n_fft, options["n_mels"], options["f_min"],
                                 options["f_max"]).to(padded.device)
    mel_by_bin = mel.T  # [bins, n_mels] view of the [n_mels, bins] array, the layout of torchlibrosa's melW
    num_frames = sum(stop - start for start, stop in frame_ranges)
    # A few signals at a time, chunks split over threads: a whole batch's spectra (e.g. 100 x 1001 x 513) are
    # hundreds of MB, which costs more in page faults and memory traffic than the transform itself.
    step = max(1, _CHUNK_FRAMES // max(num_frames, 1))
    log_mel = torch.empty(padded.shape[0], num_frames, options["n_mels"], dtype=torch.float32, device=padded.device)
    db_offset = 10.0 * math.log10(max(options["amin"], options["ref"]))
    if options["stft"] == "dft":
        # Only the bins some mel filter uses (e.g. 2-448 of 513 for 50-14000 Hz): the others get power 0, which
        # adds the same +0 to every mel sum as their weight 0 times their power did.
        used = torch.nonzero(mel.amax(dim=0) > 0).flatten()
        low, high = (int(used[0]), int(used[-1]) + 1) if used.numel() else (0, 1)
        weights = _dft_weights_of_bins(n_fft, options["win_length"], low, high).to(padded.device)
        pieces = [(start * hop, (stop - 1) * hop + n_fft) for start, stop in frame_ranges]
    else:
        window = torch.hann_window(options["win_length"], periodic=True, dtype=torch.float32, device=padded.device)

    def power_spectrum(rows: torch.Tensor) -> torch.Tensor:
        """``[b, frames, bins]``, the frames of all ranges."""
        if options["stft"] == "fft":
            spectrum = torch.stft(rows, n_fft=n_fft, hop_length=hop, win_length=options["win_length"], window=window,
                                  center=False, return_complex=True)  # [b, bins, all frames]
            power = spectrum.real.pow(2) + spectrum.imag.pow(2)
            power = torch.cat([power[..., start:stop] for start, stop in frame_ranges], dim=-1)
            return power.transpose(-1, -2)
        # The frames of all ranges as the columns of one [b, 1, n_fft, frames] image, convolved with the DFT rows
        # as (n_fft x 1) kernels: each output is the same sample-ordered float32 sum as torchlibrosa's strided
        # conv1d (bit for bit), but oneDNN runs this layout ~1.5x faster (its kernel then blocks over frames).
        frames = torch.cat([rows[:, begin:end].unfold(-1, n_fft, hop) for begin, end in pieces], dim=1)
        image = frames.transpose(1, 2).unsqueeze(1).contiguous()
        if image.shape[0] == 1 and image.numel() <= _ONEDNN_MIN_SINGLE_INPUT:
            image = image.expand(2, -1, -1, -1)  # keep torch on oneDNN's convolution (see _ONEDNN_MIN_SINGLE_INPUT)
        spectrum = F.conv2d(image, weights.unsqueeze(-1))[: rows.shape[0], :, 0]  # [b, 2 * bins, frames]
        bins = high - low
        power = spectrum.new_zeros(rows.shape[0], n_fft // 2 + 1, spectrum.shape[-1])
        torch.add(spectrum[:, :bins].pow(2), spectrum[:, bins:].pow(2), out=power[:, low:high])  # real**2 + imag**2
        return power.transpose(-1, -2)

    def work(starts):
        for start in starts:
            mel_power = torch.matmul(power_spectrum(padded[start : start + step]), mel_by_bin)  # [b, frames, n_mels]
            chunk = log_mel[start : start + step]
            torch.log10(torch.clamp(mel_power, min=options["amin"]), out=chunk)
            chunk.mul_(10.0).sub_(db_offset)

    run_chunks_in_parallel(work, list(range(0, padded.shape[0], step)))
    return log_mel


def _floor_below_peak(log_mel: torch.Tensor, top_db: float) -> torch.Tensor:
    if top_db < 0:
        raise ValueError(f"top_db must be non-negative, got {top_db}.")
    peak = log_mel.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(log_mel, peak - top_db)


def _tiled_log_mel(signals: torch.Tensor, repeats: int, options: dict) -> torch.Tensor:
    """Log-mel of each row of ``signals`` tiled ``repeats`` times, computing each distinct frame once.

    With centre padding of ``pad = n_fft // 2``, frame ``j`` of a signal tiled from a segment of ``L`` samples
    (``L`` a multiple of the hop) sees only tiled samples when ``first <= j <= last`` (``first = ceil(pad / hop)``,
    ``last = (N + pad - n_fft) // hop``); those frames repeat with period ``L / hop``. The frames before ``first``
    and after ``last`` see the reflected edges, which are the same for any number of tiles. So a signal of
    ``r < repeats`` tiles whose interior still holds one whole period gives every distinct frame: its frames
    ``[0, first + period)`` and its tail after ``last``.
    """
    length, hop, n_fft = signals.shape[-1], options["hop_length"], options["n_fft"]
    period = length // hop
    pad = n_fft // 2
    first = -(-pad // hop)

    def last_interior(tiles: int) -> int:
        return (tiles * length + pad - n_fft) // hop

    short = next((r for r in range(2, repeats) if last_interior(r) >= first + period - 1), None)
    if length % hop or not options["center"] or short is None:
        tiled = _pad_signals(signals.repeat(1, repeats), n_fft, options["center"], options["pad_mode"])
        return _log_mel_of_frames(tiled, [(0, 1 + (tiled.shape[-1] - n_fft) // hop)], options)
    padded = _pad_signals(signals.repeat(1, short), n_fft, True, options["pad_mode"])
    short_frames = 1 + short * length // hop
    head, tail_start = first + period, last_interior(short) + 1
    frames = _log_mel_of_frames(padded, [(0, head), (tail_start, short_frames)], options)
    num_frames = 1 + repeats * length // hop
    index = torch.arange(num_frames)
    tail = last_interior(repeats) + 1  # frame tail + i of the full signal is frame tail_start + i of the short one
    index = torch.where(
        index < head,
        index,
        torch.where(index >= tail, index - tail + head, first + (index - first) % period),
    )
    return frames.index_select(-2, index)
