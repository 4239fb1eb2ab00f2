"""Band-limited resampling of in-memory audio (Hann-windowed sinc, polyphase via one strided conv1d).

Same family of filter as torchaudio's ``sinc_interp_hann`` default: the rate ratio is reduced by the
gcd to ``orig -> new``, each of the ``new`` output phases gets its own windowed-sinc kernel, and a
single ``conv1d`` with stride ``orig`` evaluates all phases for every signal of the batch.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .validation import check_waveform

__all__ = ["resample"]

# Largest polyphase filter bank built (float elements): 2**25 = 128 MiB in float32.
_MAX_KERNEL_ELEMENTS = 2**25


@lru_cache(maxsize=16)
def _sinc_kernels(orig: int, new: int, lowpass_filter_width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    # Cut-off below both Nyquist rates; rolloff < 1 leaves room for the transition band (anti-aliasing).
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    input_offsets = torch.arange(-width, width + orig, dtype=torch.float64) / orig
    phase_offsets = -torch.arange(new, dtype=torch.float64).unsqueeze(1) / new
    t = (phase_offsets + input_offsets) * base_freq  # [new, kernel_len], in units of cut-off periods
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    kernels = sinc * window * (base_freq / orig)
    return kernels.unsqueeze(1), width  # [new, 1, kernel_len]


def resample(
    waveform: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    *,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> torch.Tensor:
    """Resample ``[..., N]`` from ``orig_freq`` to ``new_freq`` Hz (integer rates, any pair).

    Output length is ``ceil(N * new_freq / orig_freq)``. All leading dims (batch, channels) are
    processed together. ``lowpass_filter_width`` (zero crossings per side) trades sharpness for cost;
    ``rolloff`` sets the cut-off as a fraction of the lower Nyquist rate.
    """
    check_waveform(waveform, name="resample input")
    if int(orig_freq) != orig_freq or int(new_freq) != new_freq or orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"Sampling rates must be positive integers, got {orig_freq} -> {new_freq}.")
    if lowpass_filter_width <= 0 or not 0 < rolloff <= 1:
        raise ValueError("lowpass_filter_width must be > 0 and rolloff in (0, 1].")
    orig_freq, new_freq = int(orig_freq), int(new_freq)
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    # Robustness fix: rates with a small gcd (44101 -> 16000) need one kernel row per output phase, each as long as
    # `orig`: gigabytes for such pairs, which used to end in an out-of-memory crash. Refuse them with the reason.
    if new * (orig + 2 * math.ceil(lowpass_filter_width * orig / (min(orig, new) * rolloff))) > _MAX_KERNEL_ELEMENTS:
        raise ValueError(
            f"Cannot resample {orig_freq} Hz -> {new_freq} Hz: the rates reduce to {orig}/{new}, which needs a "
            f"polyphase filter too large to build; resample to a standard rate (e.g. {new_freq} Hz) with ffmpeg/sox "
            "first, or decode with hf_av.media.decode_media(..., sampling_rate=...)."
        )

    kernels, width = _sinc_kernels(orig, new, int(lowpass_filter_width), float(rolloff))
    dtype = waveform.dtype
    kernels = kernels.to(device=waveform.device, dtype=dtype)
    leading, length = waveform.shape[:-1], waveform.shape[-1]
    signals = waveform.reshape(-1, 1, length)
    signals = torch.nn.functional.pad(signals, (width, width + orig))
    phases = torch.nn.functional.conv1d(signals, kernels, stride=orig)  # [B, new, steps]
    output = phases.transpose(1, 2).reshape(signals.shape[0], -1)
    target_length = math.ceil(new * length / orig)
    return output[:, :target_length].reshape(*leading, target_length)
