"""Frame operations on torch tensors (resize, centre crop, rescale + normalise) and frame-sampling rules.

Frames are channels-first float tensors ``[..., 3, H, W]`` once converted with :func:`to_channels_first`;
every operation is batched over the leading dims. No PIL or torchvision needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "to_channels_first",
    "resize_frames",
    "center_crop_frames",
    "rescale_frames",
    "normalize_frames",
    "shorter_side_size",
    "uniform_frame_indices",
    "linspace_frame_indices",
    "middle_frame_index",
    "opencv_seek_frame_indices",
]

_RESIZE_MODES = ("nearest", "bilinear", "bicubic")


def to_channels_first(frames, *, input_layout: str | None = None) -> torch.Tensor:
    """Return a tensor ``[..., C, H, W]`` (C in 1, 3, 4) from numpy/torch frames.

    Args:
        frames: ``[H, W, C]``, ``[C, H, W]`` or with leading batch/time dims; uint8 or float.
        input_layout: ``"channels_last"``, ``"channels_first"`` or ``None`` to infer (channels last when
            the last dim is 1/3/4 and the third-to-last is not, as decoders return ``[T, H, W, 3]``).
    """
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"Expected frames as numpy array or torch tensor, got {type(frames).__name__}.")
    if frames.ndim < 3:
        raise ValueError(f"Frames need at least 3 dims ([H, W, C] or [C, H, W]), got shape {tuple(frames.shape)}.")
    if frames.dtype == torch.bool or frames.is_complex():
        raise ValueError(f"Frames must be uint8 or floating point, got {frames.dtype}.")
    if input_layout is None:
        last_is_channel = frames.shape[-1] in (1, 3, 4)
        first_is_channel = frames.shape[-3] in (1, 3, 4)
        input_layout = "channels_last" if last_is_channel and not first_is_channel else "channels_first"
        if not last_is_channel and not first_is_channel:
            raise ValueError(f"Cannot find the colour channel (1, 3 or 4) in frames of shape {tuple(frames.shape)}.")
    if input_layout == "channels_last":
        frames = frames.movedim(-1, -3)
    elif input_layout != "channels_first":
        raise ValueError(f"input_layout must be 'channels_last', 'channels_first' or None, got {input_layout!r}.")
    if frames.shape[-3] not in (1, 3, 4):
        raise ValueError(f"Frames must have 1, 3 or 4 channels, got shape {tuple(frames.shape)}.")
    if frames.is_floating_point() and not bool(torch.isfinite(frames).all()):
        raise ValueError("Frames contain NaN or infinite values.")
    return frames


def shorter_side_size(height: int, width: int, shorter_side: int) -> tuple[int, int]:
    """Output size that scales the shorter side to ``shorter_side`` (torchvision ``Resize(int)`` rounding)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shorter_side, int(shorter_side * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize_frames(
    frames: torch.Tensor,
    size: int | Sequence[int],
    *,
    mode: str = "bilinear",
    antialias: bool = True,
    shorter_side: bool | None = None,
) -> torch.Tensor:
    """Resize float frames ``[..., C, H, W]``.

    Args:
        size: an int scales the shorter side to it keeping the aspect ratio (``shorter_side`` defaults to
            True then); ``(height, width)`` gives the exact output size.
        mode: ``"bilinear"``, ``"bicubic"`` or ``"nearest"`` (``align_corners=False``, as torchvision).
        antialias: low-pass when downscaling (PIL / torchvision >= 0.17 behaviour); the LAVisH and DG-SCT
            checkpoints were trained without it.
    """
    if not frames.is_floating_point():
        raise ValueError(f"resize_frames expects float frames, got {frames.dtype}; convert and rescale first.")
    if mode not in _RESIZE_MODES:
        raise ValueError(f"mode must be one of {_RESIZE_MODES}, got {mode!r}.")
    height, width = frames.shape[-2:]
    if isinstance(size, int):
        if shorter_side is False:
            out_h, out_w = size, size
        else:
            out_h, out_w = shorter_side_size(height, width, size)
    else:
        if len(size) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}.")
        out_h, out_w = int(size[0]), int(size[1])
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"Resize target must be positive, got {(out_h, out_w)}.")
    if (out_h, out_w) == (height, width):
        return frames  # PIL and torchvision return the image unchanged too
    leading = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": antialias}
    resized = F.interpolate(flat, size=(out_h, out_w), mode=mode, **kwargs)
    return resized.reshape(*leading, *resized.shape[-3:])


def center_crop_frames(frames: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Centre crop ``[..., C, H, W]`` to ``size`` (torchvision offsets ``round((H - h) / 2)``; zero pad if smaller)."""
    crop_h, crop_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    height, width = frames.shape[-2:]
    if crop_h > height or crop_w > width:
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        frames = F.pad(frames, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        height, width = frames.shape[-2:]
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return frames[..., top : top + crop_h, left : left + crop_w]


def rescale_frames(frames: torch.Tensor, rescale_factor: float = 1 / 255) -> torch.Tensor:
    """``frames * rescale_factor`` as float32, rounded once.

    Defined as the float64 product cast to float32: for 1/255 this equals ``uint8 / 255`` (torchvision
    ``ToTensor`` / ``read_image / 255``) bit for bit, whereas a float32 multiply by 1/255 is off by 1 ulp on some
    values. uint8 frames take a float32 division by ``1 / rescale_factor`` when that gives the same 256 values
    (checked once per factor), which avoids a float64 copy of every frame (8 bytes per pixel of a 720p video).
    """
    if frames.dtype == torch.uint8 and _float32_division_is_exact(float(rescale_factor)):
        return torch.div(frames, 1.0 / float(rescale_factor)).to(torch.float32)
    return (frames.to(torch.float64) * rescale_factor).to(torch.float32)


@lru_cache(maxsize=8)
def _float32_division_is_exact(rescale_factor: float) -> bool:
    values = torch.arange(256, dtype=torch.uint8)
    reference = (values.to(torch.float64) * rescale_factor).to(torch.float32)
    divisor = 1.0 / rescale_factor
    return math.isfinite(divisor) and torch.equal(torch.div(values, divisor).to(torch.float32), reference)


def normalize_frames(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(frames - mean) / std`` per channel on ``[..., C, H, W]`` (torchvision ``Normalize``)."""
    channels = frames.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean/std need {channels} values, got {len(mean)} and {len(std)}.")
    mean_t = torch.tensor(mean, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
    return (frames - mean_t) / std_t


# --- frame-sampling rules (plain index arithmetic, shared by processors and data pipelines) ---


def uniform_frame_indices(total: int, num: int) -> list[int]:
    """``int(i * (total / num))`` for ``i < num`` (CAV-MAE's extractor; evaluated in that order)."""
    if total <= 0 or num <= 0:
        raise ValueError(f"Need a positive frame count and number of samples, got total={total}, num={num}.")
    return [int(i * (total / num)) for i in range(num)]


def opencv_seek_frame_indices(num_frames: int, fps: float, num: int = 10, max_seconds: float = 10.0) -> list[int]:
    """The frames CAV-MAE's ``extract_video_frame.py`` actually reads.

    ``total = min(num_frames, int(fps * max_seconds))``; target ``idx_i = int(i * total / num)``; the
    script seeks OpenCV to ``idx_i - 1`` and reads the next frame, i.e. frame ``max(idx_i - 1, 0)``
    (0-based; ``CAP_PROP_POS_FRAMES`` is the index of the frame decoded next).
    """
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"Video frame rate must be positive, got {fps}.")
    total = min(int(num_frames), int(fps * max_seconds))
    return [max(index - 1, 0) for index in uniform_frame_indices(total, num)]


def linspace_frame_indices(num_frames: int, num: int = 10) -> list[int]:
    """0-based indices of ``np.linspace(1, num_frames, num, dtype=int)`` (LAVisH / DG-SCT, 1-based files)."""
    if num_frames <= 0:
        raise ValueError(f"Need at least one frame, got {num_frames}.")
    return [int(i) - 1 for i in np.linspace(1, num_frames, num, dtype=int)]


def middle_frame_index(num: int = 10) -> int:
    """``int(num / 2)``: the evaluation frame of CAV-MAE (``frame_use=-1``)."""
    return int(num / 2)
