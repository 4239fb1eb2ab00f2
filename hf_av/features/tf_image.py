"""TensorFlow-compatible frame operations (resize, crop, zero-centring) in NumPy.

Families ported from TensorFlow (VATT, through DeepMind's DMVR loaders) were trained and evaluated on frames
that went through `tf.image.resize` and `tf.image.resize_with_crop_or_pad`. PIL's and torchvision's bilinear
kernels differ from TF's (antialiasing, rounding, coordinate conventions), so they cannot give the original
pixels. The functions below re-implement the TF kernels operation for operation **in float32**, which the VATT
processor fixture (`tests/fixtures/processors/vatt`) shows to be bit-exact against TF 2.15: a float64 version is
off by one uint8 step on ~0.1% of pixels, because values that are exact integers in float64 land just below
the integer in float32 and are then truncated down.

All functions take and return channels-last arrays `[..., height, width, channels]` (the layout TF used), so
they compose with decoded frames `[T, H, W, 3]` without transposes; the callers move channels first at the end.
"""

from __future__ import annotations

import numpy as np


__all__ = [
    "resize_smallest_output_size",
    "tf_resize_bilinear",
    "resize_smallest",
    "crop_or_pad_center",
    "three_crop_offsets",
    "three_crop",
    "zero_center",
]

# Frames are resized in chunks so that the float32 intermediates of a long clip stay small (a 224x398 RGB
# float32 frame is ~1 MB, and the kernel holds three such arrays per frame).
_RESIZE_CHUNK = 16


def resize_smallest_output_size(height: int, width: int, min_resize: int) -> tuple[int, int]:
    """Output size of DMVR's `resize_smallest`: shorter side to `min_resize`, aspect kept by floor division.

    DMVR computes `max(min_resize, h * min_resize // w)` and `max(min_resize, w * min_resize // h)` with integer
    floor division, so a 360x640 frame becomes 224x398 (not 224x399 as rounding would give).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"Frames must have a positive size, got height={height}, width={width}.")
    if min_resize <= 0:
        raise ValueError(f"`min_resize` must be positive, got {min_resize}.")
    output_height = max(min_resize, (height * min_resize) // width)
    output_width = max(min_resize, (width * min_resize) // height)
    return output_height, output_width


def _interpolation_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of TF's `ResizeBilinear` (half-pixel centres, no align_corners).

    Mirrors `compute_interpolation_weights` in TF's `resize_bilinear_op.cc`: the scale is `in / out` in float32,
    the source coordinate is `(i + 0.5) * scale - 0.5` in float32, `lower = max(floor(src), 0)`,
    `upper = min(ceil(src), in - 1)` and the weight is `src - floor(src)` (taken before clamping, as TF does).
    """
    scale = np.float32(in_size) / np.float32(out_size)
    source = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    source_floor = np.floor(source)
    lower = np.maximum(source_floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(source), in_size - 1).astype(np.int64)
    weight = (source - source_floor).astype(np.float32)
    return lower, upper, weight


def tf_resize_bilinear(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`tf.image.resize(frames, size)` (bilinear, half-pixel centres, `antialias=False`) in float32.

    Args:
        frames (`np.ndarray` of shape `[..., height, width, channels]`):
            Any real dtype; it is converted to float32 first, as TF's kernel does.
        size (`tuple[int, int]`):
            Output `(height, width)`.

    Returns:
        `np.ndarray` of dtype float32 and shape `[..., size[0], size[1], channels]`. Like TF, the result is not
        rounded or cast back; see `resize_smallest` for the uint8 round trip DMVR applies.
    """
    frames = np.asarray(frames)
    if frames.ndim < 3:
        raise ValueError(f"Expected frames of shape [..., height, width, channels], got shape {frames.shape}.")
    out_height, out_width = int(size[0]), int(size[1])
    if out_height <= 0 or out_width <= 0:
        raise ValueError(f"Output size must be positive, got {size}.")
    in_height, in_width = frames.shape[-3], frames.shape[-2]
    if in_height <= 0 or in_width <= 0:
        raise ValueError(f"Cannot resize empty frames of shape {frames.shape}.")

    y_lower, y_upper, y_weight = _interpolation_weights(in_height, out_height)
    x_lower, x_upper, x_weight = _interpolation_weights(in_width, out_width)

    lead_shape = frames.shape[:-3]
    flat = frames.reshape((-1,) + frames.shape[-3:])
    output = np.empty((flat.shape[0], out_height, out_width, flat.shape[-1]), dtype=np.float32)
    x_weight = x_weight[:, None]
    y_weight = y_weight[:, None, None]
    for start in range(0, flat.shape[0], _RESIZE_CHUNK):
        chunk = flat[start : start + _RESIZE_CHUNK].astype(np.float32)
        # Only the input rows some output row reads are interpolated horizontally.
        rows = np.union1d(y_lower, y_upper)
        row_position = np.searchsorted(rows, np.arange(in_height))
        chunk = chunk[:, rows]
        left = chunk[:, :, x_lower]
        right = chunk[:, :, x_upper]
        # TF's order of operations, which matters in float32:
        # top = tl + (tr - tl) * dx; bottom = bl + (br - bl) * dx; out = top + (bottom - top) * dy.
        horizontal = left + (right - left) * x_weight
        top = horizontal[:, row_position[y_lower]]
        bottom = horizontal[:, row_position[y_upper]]
        output[start : start + _RESIZE_CHUNK] = top + (bottom - top) * y_weight
    return output.reshape(lead_shape + output.shape[1:])


def resize_smallest(frames: np.ndarray, min_resize: int) -> np.ndarray:
    """DMVR `resize_smallest`: resize so the shorter side is `min_resize`, returning the input dtype.

    The resize is skipped when the size already matches (DMVR's `tf.cond`). For integer inputs the float32
    result is cast back by **truncation** (TF's `tf.cast`), which is what the original pipeline fed to the
    normalisation; float inputs stay float32.

    Args:
        frames (`np.ndarray` of shape `[..., height, width, channels]`): frames, typically uint8.
        min_resize (`int`): target length of the shorter side.
    """
    frames = np.asarray(frames)
    height, width = frames.shape[-3], frames.shape[-2]
    output_size = resize_smallest_output_size(height, width, min_resize)
    if output_size == (height, width):
        return frames
    resized = tf_resize_bilinear(frames, output_size)
    if np.issubdtype(frames.dtype, np.integer):
        info = np.iinfo(frames.dtype)
        # Bilinear weights are convex, so the result stays in the input range up to float rounding; the clip
        # only guards against that rounding before the truncating cast.
        return np.clip(resized, info.min, info.max).astype(frames.dtype)
    return resized.astype(frames.dtype if frames.dtype == np.float64 else np.float32, copy=False)


def crop_or_pad_center(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """`tf.image.resize_with_crop_or_pad`: central crop, or symmetric zero padding where the frame is smaller.

    Crop offsets are `(H - height) // 2` and `(W - width) // 2`; padding offsets are `(height - H) // 2` and
    `(width - W) // 2`, exactly as TF computes them.
    """
    frames = np.asarray(frames)
    in_height, in_width = frames.shape[-3], frames.shape[-2]
    crop_top = max((in_height - height) // 2, 0)
    crop_left = max((in_width - width) // 2, 0)
    cropped = frames[
        ..., crop_top : crop_top + min(height, in_height), crop_left : crop_left + min(width, in_width), :
    ]
    if cropped.shape[-3] == height and cropped.shape[-2] == width:
        return cropped
    pad_top = max((height - in_height) // 2, 0)
    pad_left = max((width - in_width) // 2, 0)
    padded = np.zeros(frames.shape[:-3] + (height, width, frames.shape[-1]), dtype=frames.dtype)
    padded[..., pad_top : pad_top + cropped.shape[-3], pad_left : pad_left + cropped.shape[-2], :] = cropped
    return padded


def three_crop_offsets(height: int, width: int, crop_height: int, crop_width: int) -> list[tuple[int, int]]:
    """Top-left corners of VATT's `multi_crop_image`: three crops along the longer side.

    Offsets along the longer side (the height when `height >= width`) are `0`, `round(L / 2 - crop // 2)` with
    TF's round-half-to-even, and `L - crop`; the other coordinate is always 0, as in the original.
    """
    if height < crop_height or width < crop_width:
        raise ValueError(
            f"Three-crop needs frames at least {crop_height}x{crop_width}, got {height}x{width}; resize first."
        )
    if height >= width:
        middle = int(np.round(np.float32(height) / np.float32(2) - np.float32(crop_height // 2)))
        return [(0, 0), (middle, 0), (height - crop_height, 0)]
    middle = int(np.round(np.float32(width) / np.float32(2) - np.float32(crop_width // 2)))
    return [(0, 0), (0, middle), (0, width - crop_width)]


def three_crop(frames: np.ndarray, crop_height: int, crop_width: int) -> np.ndarray:
    """Stack the three crops of `three_crop_offsets` on a new leading axis: `[3, ..., crop_h, crop_w, C]`."""
    frames = np.asarray(frames)
    offsets = three_crop_offsets(frames.shape[-3], frames.shape[-2], crop_height, crop_width)
    return np.stack(
        [frames[..., top : top + crop_height, left : left + crop_width, :] for top, left in offsets], axis=0
    )


def zero_center(frames: np.ndarray) -> np.ndarray:
    """DMVR `normalize_image(..., zero_centering_image=True)`: `float32(x) * float32(2 / 255) - 1`, in [-1, 1]."""
    return np.asarray(frames).astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
