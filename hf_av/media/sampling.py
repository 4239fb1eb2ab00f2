"""Generic frame/sample index helpers (model-specific sampling rules live in the processors).

All functions return ``int64`` numpy arrays of indices into a sequence of ``num_frames`` items.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "center_indices",
    "linspace_indices",
    "middle_index",
    "segment_indices",
    "strided_indices",
    "uniform_indices",
]


def _check(num_frames: int, count: int) -> None:
    if int(num_frames) < 0 or int(count) < 0:
        raise ValueError(f"num_frames and count must be >= 0, got {num_frames}, {count}")
    if count > 0 and num_frames == 0:
        raise ValueError("cannot pick frames from an empty sequence (num_frames=0)")


def segment_indices(num_frames: int, count: int) -> np.ndarray:
    """Start of each of ``count`` equal segments: ``floor(i * num_frames / count)`` (exact integer arithmetic)."""
    _check(num_frames, count)
    i = np.arange(count, dtype=np.int64)
    return (i * int(num_frames)) // max(int(count), 1)


uniform_indices = segment_indices


def center_indices(num_frames: int, count: int) -> np.ndarray:
    """Centre of each of ``count`` equal segments: ``floor((2i + 1) * num_frames / (2 count))`` (TSN-style)."""
    _check(num_frames, count)
    i = np.arange(count, dtype=np.int64)
    return ((2 * i + 1) * int(num_frames)) // (2 * max(int(count), 1))


def linspace_indices(num_frames: int, count: int, rounding: str = "floor") -> np.ndarray:
    """``count`` evenly spaced indices from the first to the last frame, both included
    (``np.linspace(0, num_frames - 1, count)`` then ``floor`` as ``dtype=int`` does, or ``round``)."""
    _check(num_frames, count)
    values = np.linspace(0, int(num_frames) - 1, int(count)) if count else np.zeros(0)
    if rounding == "floor":
        return np.floor(values).astype(np.int64)
    if rounding == "round":
        return np.round(values).astype(np.int64)
    raise ValueError(f"rounding must be 'floor' or 'round', got {rounding!r}")


def strided_indices(num_frames: int, count: int, stride: int = 1, start: int = 0, wrap: bool = True) -> np.ndarray:
    """``start + stride * k`` for ``k < count``; wrapped modulo ``num_frames`` (tiling a short clip) or clipped
    to the last frame when ``wrap=False``."""
    _check(num_frames, count)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    idx = int(start) + int(stride) * np.arange(count, dtype=np.int64)
    if count == 0:
        return idx
    return idx % int(num_frames) if wrap else np.minimum(idx, int(num_frames) - 1)


def middle_index(num_frames: int) -> int:
    """The middle frame, ``num_frames // 2``."""
    _check(num_frames, 1)
    return int(num_frames) // 2
