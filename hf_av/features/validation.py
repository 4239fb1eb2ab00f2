"""Input checks shared by the signal-processing functions: fail early with a message that names the problem."""

from __future__ import annotations

import torch

__all__ = ["check_waveform"]


def check_waveform(waveform: torch.Tensor, *, name: str = "audio") -> None:
    """Raise ``ValueError`` for a non-float, empty or non-finite waveform tensor."""
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(waveform).__name__}.")
    if not waveform.is_floating_point():
        raise ValueError(f"{name}: expected floating-point samples, got dtype {waveform.dtype}.")
    if waveform.numel() == 0 or waveform.shape[-1] == 0:
        raise ValueError(f"{name}: empty audio (shape {tuple(waveform.shape)}).")
    # One reduction is much cheaper than an elementwise test; a non-finite sum (NaN/inf present, or an
    # overflow of huge values) triggers the exact check.
    if not bool(torch.isfinite(waveform.sum())) and not bool(torch.isfinite(waveform).all()):
        bad = "NaN" if bool(torch.isnan(waveform).any()) else "infinite"
        raise ValueError(f"{name}: waveform contains {bad} values.")
