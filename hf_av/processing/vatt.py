"""Preprocessing for VATT (Akbari et al., NeurIPS 2021): raw waveform, frames and DMVR word tokens.

The original evaluation pipeline is TensorFlow code in `google-research/vatt` on top of DeepMind's DMVR loaders.
Every step here re-implements one of those functions so that the outputs match the original bit for bit on the
shared fixture (`tests/fixtures/processors/vatt`):

| step | original | here |
|---|---|---|
| window offsets | `dmvr.processors.sample_linspace_sequence` / `sample_sequence` | `linspace_window_indices`, `middle_window_indices` |
| resize | `dmvr.processors.resize_smallest` (TF bilinear, half-pixel, no antialias, cast back to uint8) | `hf_av.features.tf_image.resize_smallest` |
| crop | `dmvr.processors.crop_image` (central) / `vatt.data.processing.multi_crop_image` (3 crops) | `crop_or_pad_center` / `three_crop` |
| normalise | `dmvr.processors.normalize_image(zero_centering_image=True)` | `zero_center` |
| audio | `sample_linspace_sequence` over samples, no normalisation | `VattFeatureExtractor` |
| text | `dmvr.tokenizers.WordTokenizer.string_tensor_to_indices` | `VattTokenizer` |

Evaluation protocols of the paper, as constructor arguments:

| protocol | video | audio |
|---|---|---|
| fine-tune eval (K400/K600/MiT classifiers) | `num_test_clips=4, multi_crop=True` (12 views) | |
| AudioSet fine-tune eval (WaT classifier) | | `num_test_clips=4, audio_stride=2` |
| pre-train eval / linear probes (ESC-50 path) | `num_test_clips=4, multi_crop=False` | `num_test_clips=4, audio_stride=1` |
| single middle clip (defaults) | `num_test_clips=1` | `num_test_clips=1` |
"""

from __future__ import annotations

import os
import re
import string
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, PreTrainedTokenizer
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from ..features.tf_image import crop_or_pad_center, resize_smallest, three_crop, zero_center
from .base import MODALITIES, AudioVisualProcessor, WaveformFeatureExtractor, describe_source, resolve_modalities


__all__ = [
    "VattFeatureExtractor",
    "VattVideoProcessor",
    "VattTokenizer",
    "VattProcessor",
    "linspace_window_indices",
    "middle_window_indices",
]

# VATT's loaders assume every dataset is stored at 25 fps (`configs/dataset.py: DEFAULT_FPS`); with the eval
# frame stride of 2 a 32-frame window spans 2.56 s.
VATT_FRAME_RATE = 25.0
VATT_SAMPLING_RATE = 48000
# 3.2 s at 48 kHz: the WaT tokenizer turns it into 1200 patches of 128 samples.
VATT_NUM_SAMPLES = 153600


# --------------------------------------------------------------------------------------------------------------
# Window sampling (DMVR)
# --------------------------------------------------------------------------------------------------------------


def linspace_window_indices(length: int, num_windows: int, num_steps: int, stride: int = 1) -> np.ndarray:
    """Indices of DMVR's `sample_linspace_sequence`: `num_windows` evenly spread windows, `[num_windows, num_steps]`.

    Window `i` starts at `int(float32 linspace(0, max(0, length - num_steps * stride), num_windows)[i])` and takes
    every `stride`-th element from there. Indices wrap modulo `length`: DMVR tiles the sequence instead of padding,
    so a clip shorter than a window repeats from its start.
    """
    _check_window_arguments(length, num_windows, num_steps, stride)
    max_offset = np.float32(max(0, length - num_steps * stride))
    # `tf.linspace` (linspace_nd) in float32: start, start + delta * i for the interior points, and stop exactly.
    if num_windows == 1:
        offsets = np.zeros(1, dtype=np.float32)
    else:
        delta = max_offset / np.float32(num_windows - 1)
        offsets = delta * np.arange(num_windows, dtype=np.float32)
        offsets[-1] = max_offset
    # `tf.cast(float -> int32)` truncates toward zero; offsets are non-negative, so this is a floor.
    offsets = offsets.astype(np.int64)
    steps = np.arange(num_steps, dtype=np.int64) * stride
    return (offsets[:, None] + steps[None, :]) % length


def middle_window_indices(length: int, num_steps: int, stride: int = 1) -> np.ndarray:
    """Indices of DMVR's deterministic `sample_sequence`: one window starting at `max(0, (length - span) // 2)`."""
    _check_window_arguments(length, 1, num_steps, stride)
    offset = max(0, (length - num_steps * stride) // 2)
    return ((offset + np.arange(num_steps, dtype=np.int64) * stride) % length)[None, :]


def _check_window_arguments(length: int, num_windows: int, num_steps: int, stride: int) -> None:
    if length <= 0:
        raise ValueError("Cannot sample windows from an empty sequence (length 0).")
    if num_windows < 1 or num_steps < 1 or stride < 1:
        raise ValueError(
            f"num_windows, num_steps and stride must be >= 1, got {num_windows}, {num_steps} and {stride}."
        )


def _window_indices(length: int, num_test_clips: int, num_steps: int, stride: int) -> np.ndarray:
    # VATT switches sampler with the number of test clips: one clip is the middle window (`sample_sequence`),
    # several are linearly spaced (`sample_linspace_sequence`); the two differ for a single window.
    if num_test_clips == 1:
        return middle_window_indices(length, num_steps, stride)
    return linspace_window_indices(length, num_test_clips, num_steps, stride)


def _to_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


# --------------------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------------------


class VattFeatureExtractor(WaveformFeatureExtractor):
    r"""
    Cuts the raw 48 kHz mono waveform VATT's WaT audio tower reads into fixed-length test windows.

    VATT consumes the waveform itself (no spectrogram, no normalisation: values are used as decoded). Windows of
    `num_samples` samples are taken every `audio_stride`-th sample at the offsets of DMVR's
    `sample_linspace_sequence` (several windows) or its middle `sample_sequence` (one window), wrapping around a
    clip that is too short.

    Args:
        sampling_rate (`int`, *optional*, defaults to 48000):
            Rate the model was trained at.
        num_samples (`int`, *optional*, defaults to 153600):
            Samples per window (3.2 s at 48 kHz; 1200 WaT patches of 128 samples).
        audio_stride (`int`, *optional*, defaults to 1):
            Step between the samples of a window. 1 for pre-training evaluation (ESC-50 path), 2 for the AudioSet
            fine-tune evaluation, where a window spans 6.4 s.
        num_test_clips (`int`, *optional*, defaults to 1):
            Windows per clip. The released AudioSet evaluation uses 4 and averages logits over them.
        resample_input (`bool`, *optional*, defaults to `True`):
            Audio at another rate is resampled with hf_av's windowed-sinc resampler (VATT's own resampling is not
            released; its fixture audio came from ffmpeg at 48 kHz). `False` refuses such audio instead.

    Input must be mono: VATT's downmix is not released, so multi-channel audio is refused rather than mixed in
    some arbitrary way (`VattProcessor` decodes files with ffmpeg's default `-ac 1` matrix).

    Returns `input_values` of shape `[batch, num_test_clips, num_samples]` (float32). The original feeds
    `[batch * num_test_clips, num_samples, 1]` to the model: flatten the first two axes and add the trailing axis
    if a model wants that layout.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        sampling_rate: int = VATT_SAMPLING_RATE,
        num_samples: int = VATT_NUM_SAMPLES,
        audio_stride: int = 1,
        num_test_clips: int = 1,
        resample_input: bool = True,
        **kwargs,
    ):
        kwargs.pop("feature_size", None)  # always 1 (mono waveform); kept in the saved config by the base class
        super().__init__(feature_size=1, sampling_rate=sampling_rate, resample_input=resample_input, **kwargs)
        self.num_samples = int(num_samples)
        self.audio_stride = int(audio_stride)
        self.num_test_clips = int(num_test_clips)
        _check_window_arguments(1, self.num_test_clips, self.num_samples, self.audio_stride)

    def __call__(
        self,
        raw_audio: Any,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        num_test_clips: int | None = None,
        audio_stride: int | None = None,
    ) -> BatchFeature:
        """
        Args:
            raw_audio (`np.ndarray`, `torch.Tensor`, list of floats or list of arrays):
                One mono waveform `[num_samples]`, a batch `[batch, num_samples]`, or a list of waveforms of any
                lengths (`[num_samples]` or `[1, num_samples]` each). Float samples.
            sampling_rate (`int`): rate of `raw_audio` (required, so that a wrong rate cannot pass unnoticed).
            return_tensors (`str`, *optional*): `"pt"`, `"np"` or `None` (numpy).
            num_test_clips (`int`, *optional*): overrides `self.num_test_clips` for this call.
            audio_stride (`int`, *optional*): overrides `self.audio_stride` for this call.
        """
        return super().__call__(
            raw_audio,
            sampling_rate=sampling_rate,
            return_tensors=return_tensors,
            num_test_clips=num_test_clips,
            audio_stride=audio_stride,
        )

    def _extract(self, waveforms: list[torch.Tensor], num_test_clips=None, audio_stride=None) -> dict:
        num_test_clips = self.num_test_clips if num_test_clips is None else int(num_test_clips)
        audio_stride = self.audio_stride if audio_stride is None else int(audio_stride)
        windows = []
        for index, waveform in enumerate(waveforms):
            if waveform.shape[0] != 1:
                raise ValueError(
                    f"audio[{index}]: expected a mono waveform, got {waveform.shape[0]} channels. VATT's mono "
                    "downmix is not released; decode with `audio_channels='mono'` or pick a channel yourself."
                )
            indices = _window_indices(waveform.shape[-1], num_test_clips, self.num_samples, audio_stride)
            windows.append(waveform[0][torch.from_numpy(indices)])
        return {"input_values": torch.stack(windows)}


# --------------------------------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------------------------------


class VattVideoProcessorKwargs(VideosKwargs, total=False):
    """Call-time overrides of `VattVideoProcessor` beyond Transformers' `VideosKwargs`."""

    frame_stride: int
    frame_rate: float
    num_test_clips: int
    min_resize: int
    multi_crop: bool


class VattVideoProcessor(VideoProcessorMixin):
    r"""
    Turns decoded frames into VATT's evaluation views: window sampling, TF resize, crop(s) and zero-centring.

    Per clip: take `num_test_clips` windows of `num_frames` frames every `frame_stride`-th frame (DMVR
    `sample_linspace_sequence`, or the middle `sample_sequence` for one window, wrapping around short clips);
    resize so the shorter side is `min_resize` with TF's bilinear kernel (half-pixel centres, no antialias,
    computed in float32 and truncated back to uint8, integer floor division for the long side); take the central
    `crop_size` crop, or, with `multi_crop`, three crops along the longer side; map `x -> x * 2/255 - 1`.

    Frames are assumed to be at `frame_rate` (25 fps, the rate VATT assumes for all its datasets);
    `VattProcessor` decodes files at that rate.

    Args:
        num_frames (`int`, *optional*, defaults to 32): frames per window (the ViT patch is 4 frames deep).
        frame_stride (`int`, *optional*, defaults to 2): step between sampled frames (12.5 fps at 25 fps).
        frame_rate (`float`, *optional*, defaults to 25.0): rate the frames must have.
        num_test_clips (`int`, *optional*, defaults to 1): temporal windows per clip (4 in the paper's evaluations).
        min_resize (`int`, *optional*, defaults to 224): length of the shorter side after resizing.
        crop_size (`int`, *optional*, defaults to 224): side of the square crop(s).
        multi_crop (`bool`, *optional*, defaults to `False`): three crops along the longer side (the fine-tune
            evaluation of the video classifiers) instead of one central crop.

    Returns `pixel_values` of shape `[batch, views, num_frames, 3, crop_size, crop_size]` (float32, channels
    first as everywhere in hf_av), where `views = num_test_clips * (3 if multi_crop else 1)` ordered crop-major as
    in the original: `[crop0: window0..windowN, crop1: ..., crop2: ...]`. The TF model read the channels-last
    `[views, T, H, W, 3]`; `pixel_values.permute(0, 1, 2, 4, 5, 3)` recovers it.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = VattVideoProcessorKwargs

    def __init__(
        self,
        num_frames: int = 32,
        frame_stride: int = 2,
        frame_rate: float = VATT_FRAME_RATE,
        num_test_clips: int = 1,
        min_resize: int = 224,
        crop_size: int = 224,
        multi_crop: bool = False,
        **kwargs,
    ):
        # Written by `to_dict` for the loader; not a setting.
        kwargs.pop("video_processor_type", None)
        kwargs.pop("image_processor_type", None)
        super().__init__(**kwargs)
        self.num_frames = int(num_frames)
        self.frame_stride = int(frame_stride)
        self.frame_rate = float(frame_rate)
        self.num_test_clips = int(num_test_clips)
        self.min_resize = int(min_resize)
        self.crop_size = int(crop_size)
        self.multi_crop = bool(multi_crop)
        _check_window_arguments(1, self.num_test_clips, self.num_frames, self.frame_stride)
        if self.min_resize < 1 or self.crop_size < 1:
            raise ValueError(f"min_resize and crop_size must be positive, got {min_resize} and {crop_size}.")

    def __call__(self, videos: Any, **kwargs) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def preprocess(
        self,
        videos: Any,
        frame_rate: float | None = None,
        num_test_clips: int | None = None,
        multi_crop: bool | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            videos:
                One clip as an array or tensor `[T, H, W, 3]` (or channels-first `[T, 3, H, W]`) or as a list of
                frames (`[H, W, 3]` arrays or PIL images); or a batch: a `[B, T, H, W, 3]` array or a list of clips.
                uint8 frames as decoded; float frames are taken to be on the same 0..255 scale.
            frame_rate (`float`, *optional*):
                Rate of the given frames, checked against `self.frame_rate` (window spans are counted in frames).
            num_test_clips (`int`, *optional*): overrides `self.num_test_clips` for this call.
            multi_crop (`bool`, *optional*): overrides `self.multi_crop` for this call.
            return_tensors (`str` or [`~utils.TensorType`], *optional*): `"pt"`, `"np"` or `None`.
        """
        num_frames = int(kwargs.pop("num_frames", self.num_frames))
        frame_stride = int(kwargs.pop("frame_stride", self.frame_stride))
        min_resize = int(kwargs.pop("min_resize", self.min_resize))
        crop_size = int(kwargs.pop("crop_size", self.crop_size))
        if kwargs:
            raise TypeError(f"{self.__class__.__name__}.preprocess got unexpected arguments {sorted(kwargs)}.")
        if frame_rate is not None and not np.isclose(float(frame_rate), self.frame_rate):
            raise ValueError(
                f"{self.__class__.__name__} expects frames at {self.frame_rate:g} fps (VATT's windows are counted "
                f"in frames at that rate), got {frame_rate:g} fps. Decode at {self.frame_rate:g} fps, e.g. "
                f"`hf_av.media.decode_media(..., frame_rate={self.frame_rate:g})`."
            )
        num_test_clips = self.num_test_clips if num_test_clips is None else int(num_test_clips)
        multi_crop = self.multi_crop if multi_crop is None else bool(multi_crop)

        clips = self._as_clip_list(videos)
        pixel_values = np.stack(
            [
                self._process_clip(clip, num_frames, frame_stride, num_test_clips, min_resize, crop_size, multi_crop)
                for clip in clips
            ],
            axis=0,
        )
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)

    def sample_frame_indices(self, num_video_frames: int, num_test_clips: int | None = None) -> np.ndarray:
        """Frame indices of every window, `[num_test_clips, num_frames]`, for a clip of `num_video_frames` frames."""
        num_test_clips = self.num_test_clips if num_test_clips is None else int(num_test_clips)
        return _window_indices(num_video_frames, num_test_clips, self.num_frames, self.frame_stride)

    def _process_clip(
        self,
        frames: np.ndarray,
        num_frames: int,
        frame_stride: int,
        num_test_clips: int,
        min_resize: int,
        crop_size: int,
        multi_crop: bool,
    ) -> np.ndarray:
        indices = _window_indices(frames.shape[0], num_test_clips, num_frames, frame_stride)
        return self.process_window_frames(
            frames, indices, min_resize=min_resize, crop_size=crop_size, multi_crop=multi_crop
        )

    def process_window_frames(
        self,
        frames: np.ndarray,
        window_indices: np.ndarray,
        min_resize: int | None = None,
        crop_size: int | None = None,
        multi_crop: bool | None = None,
    ) -> np.ndarray:
        """Views of one clip from frames already chosen: `frames[window_indices]` are the windows.

        `VattProcessor` uses it to decode only the frames the windows need. Returns float32
        `[views, T, 3, crop_size, crop_size]`.

        Args:
            frames (`np.ndarray` of shape `[N, H, W, 3]`): uint8 (or 0..255 float) frames.
            window_indices (`np.ndarray` of shape `[num_windows, T]`): positions in `frames`.
        """
        min_resize = self.min_resize if min_resize is None else int(min_resize)
        crop_size = self.crop_size if crop_size is None else int(crop_size)
        multi_crop = self.multi_crop if multi_crop is None else bool(multi_crop)
        window_indices = np.asarray(window_indices)
        # Resizing is per frame, so each distinct frame is resized once however many windows repeat it.
        unique, inverse = np.unique(window_indices, return_inverse=True)
        inverse = inverse.reshape(window_indices.shape)
        resized = resize_smallest(frames[unique], min_resize)
        if multi_crop:
            crops = three_crop(resized, crop_size, crop_size)  # [3, unique, h, w, C]
        else:
            crops = crop_or_pad_center(resized, crop_size, crop_size)[None]
        # Normalising and moving channels first on the distinct frames, before the windows repeat them, gives the
        # same values as the original order (all steps are per pixel) for a fraction of the work.
        crops = np.ascontiguousarray(zero_center(crops).transpose(0, 1, 4, 2, 3))
        # [crops, windows, T, C, h, w] -> views crop-major, as VATT's `multi_crop_image` + reshape order them.
        views = crops[:, inverse]
        return views.reshape((-1,) + views.shape[2:])

    def _as_clip_list(self, videos: Any) -> list[np.ndarray]:
        if isinstance(videos, (np.ndarray, torch.Tensor)):
            array = _to_numpy(videos)
            if array.ndim == 4:
                clips = [array]
            elif array.ndim == 5:
                clips = list(array)
            else:
                raise ValueError(
                    f"Expected frames [T, H, W, 3] or a batch [B, T, H, W, 3], got an array of shape {array.shape}."
                )
        elif isinstance(videos, (list, tuple)):
            if len(videos) == 0:
                raise ValueError("Empty video input: got an empty list.")
            first = videos[0]
            if _is_single_frame(first):
                clips = [_stack_frames(videos)]
            elif isinstance(first, (list, tuple)):
                clips = [_stack_frames(clip) for clip in videos]
            else:
                clips = [_to_numpy(clip) for clip in videos]
        else:
            raise ValueError(
                "Videos must be an array or tensor [T, H, W, 3], a list of frames, or a list of clips; got "
                f"{type(videos).__name__}. To process files use `VattProcessor(videos=path)`."
            )
        return [self._check_clip(clip, index) for index, clip in enumerate(clips)]

    @staticmethod
    def _check_clip(clip: np.ndarray, index: int) -> np.ndarray:
        if clip.ndim != 4:
            raise ValueError(f"video[{index}]: expected frames [T, H, W, 3], got shape {clip.shape}.")
        if clip.shape[-1] != 3 and clip.shape[1] == 3:
            clip = clip.transpose(0, 2, 3, 1)
        if clip.shape[-1] != 3:
            raise ValueError(f"video[{index}]: expected RGB frames with 3 channels, got shape {clip.shape}.")
        if clip.shape[0] == 0 or clip.shape[1] == 0 or clip.shape[2] == 0:
            raise ValueError(f"video[{index}]: empty clip (shape {clip.shape}).")
        if clip.dtype == np.uint8:
            return clip
        if np.issubdtype(clip.dtype, np.floating):
            if not np.isfinite(clip).all():
                raise ValueError(f"video[{index}]: frames contain NaN or infinite values.")
            low, high = float(clip.min()), float(clip.max())
            if low < 0.0 or high > 255.0:
                raise ValueError(
                    f"video[{index}]: float frames must be on the 0..255 scale, got values in [{low:g}, {high:g}]."
                )
            return clip.astype(np.float32, copy=False)
        if np.issubdtype(clip.dtype, np.integer) or clip.dtype == np.bool_:
            if clip.size and (clip.min() < 0 or clip.max() > 255):
                raise ValueError(f"video[{index}]: integer frames must be in 0..255, got dtype {clip.dtype}.")
            return clip.astype(np.uint8)
        raise ValueError(f"video[{index}]: unsupported frame dtype {clip.dtype}.")


def _is_single_frame(item: Any) -> bool:
    if hasattr(item, "getdata") and hasattr(item, "size"):  # PIL image, without importing PIL
        return True
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 3


def _stack_frames(frames: Sequence[Any]) -> np.ndarray:
    if len(frames) == 0:
        raise ValueError("Empty video input: a clip has no frames.")
    arrays = [np.asarray(frame.convert("RGB")) if hasattr(frame, "convert") else _to_numpy(frame) for frame in frames]
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1:
        raise ValueError(f"All frames of a clip must have the same shape, got {sorted(shapes)}.")
    return np.stack(arrays, axis=0)


# --------------------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------------------

# RE2's `[[:punct:]]` and `tf.strings.lower` are ASCII-only: "héllo" keeps its é, "foo-bar" becomes "foobar".
_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)
_ASCII_LOWER_TABLE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# tensorflow_text's WhitespaceTokenizer splits on Unicode White_Space; Python's `\s` also matches the ASCII
# information separators U+001C..U+001F, which White_Space does not contain.
_WHITESPACE_SPLIT = re.compile(r"[^\S\x1c-\x1f]+")


def _load_vocabulary(vocab_file: str | os.PathLike) -> dict[str, int]:
    """Parse a DMVR vocabulary: one `word` per line (id = line number) or `id word` lines."""
    vocab: dict[str, int] = {}
    with open(vocab_file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle):
            fields = line.strip().split(" ")
            if len(fields) not in (1, 2):
                raise ValueError(f"{vocab_file}: line {line_number} ({line.strip()!r}) is malformed.")
            index, word = (int(fields[0]), fields[1]) if len(fields) == 2 else (line_number, fields[0])
            if word in vocab:
                raise ValueError(f"{vocab_file}: word {word!r} appears twice.")
            if index in vocab.values():
                raise ValueError(f"{vocab_file}: two words share index {index}.")
            vocab[word] = index
    return vocab


class VattTokenizer(PreTrainedTokenizer):
    r"""
    DMVR's `WordTokenizer` as a Transformers tokenizer: VATT's text tower reads word ids into a frozen word2vec
    table.

    Text is cleaned exactly as the TF pipeline does: ASCII punctuation is deleted (so "foo-bar" becomes "foobar"),
    ASCII letters are lower-cased (other letters are kept as they are), the text is split on whitespace, unknown
    words map to `<unk>`, and the ids are truncated / padded with `<pad>` to `max_length` (16 in VATT). No
    `<bos>`/`<eos>` unless asked for. Calling the tokenizer pads to `max_length` by default, as the original did.

    Args:
        vocab_file (`str`, *optional*):
            DMVR vocabulary: one word per line (id = line number) or `id word` per line. VATT used
            `howto100m_en.txt` (65536 words) from the released `misc_data.tgz`; it is not in the checkpoints.
            Without a file the vocabulary holds only the four special tokens, so every word is `<unk>`.
        max_length (`int`, *optional*, defaults to 16): number of ids per text (`max_num_words`).
        prepend_bos (`bool`, *optional*, defaults to `False`): put `<bos>` first (before truncation, like DMVR).
        append_eos (`bool`, *optional*, defaults to `False`): put `<eos>` last (before truncation, like DMVR).

    The pad id must be 0: VATT builds the text mask as `ids != 0`.
    """

    vocab_files_names = {"vocab_file": "vocab.txt"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        max_length: int = 16,
        prepend_bos: bool = False,
        append_eos: bool = False,
        pad_token: str = "<pad>",
        bos_token: str = "<bos>",
        eos_token: str = "<eos>",
        unk_token: str = "<unk>",
        **kwargs,
    ):
        # `from_pretrained` passes the special tokens back as `AddedToken`s; the vocabulary is keyed by text.
        special = [str(token) for token in (pad_token, bos_token, eos_token, unk_token)]
        if vocab_file is None:
            self.vocab = {token: index for index, token in enumerate(special)}
        else:
            self.vocab = _load_vocabulary(vocab_file)
        missing = [token for token in special if token not in self.vocab]
        if missing:
            raise ValueError(f"The vocabulary must contain the special tokens {missing} (DMVR requires them).")
        if self.vocab[special[0]] != 0:
            raise ValueError(
                f"{special[0]!r} has id {self.vocab[special[0]]}, but VATT masks text with `ids != 0`: it must be 0."
            )
        self.ids_to_tokens = {index: word for word, index in self.vocab.items()}
        self.prepend_bos = bool(prepend_bos)
        self.append_eos = bool(append_eos)
        kwargs.setdefault("model_max_length", max_length)
        kwargs.setdefault("special_tokens_pattern", "none")
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(
            pad_token=pad_token,
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            max_length=max_length,
            prepend_bos=prepend_bos,
            append_eos=append_eos,
            **kwargs,
        )
        self.max_length = int(max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab, **self.added_tokens_encoder)

    def normalize_text(self, text: str) -> str:
        """Punctuation removal and lower-casing, both ASCII-only as in TF (`[[:punct:]]`, `tf.strings.lower`)."""
        return text.translate(_PUNCTUATION_TABLE).translate(_ASCII_LOWER_TABLE)

    def tokenize(self, text: str, **kwargs) -> list[str]:
        # Bypasses the added-token trie of the base class: DMVR strips "<" and ">" before the lookup, so text can
        # never produce a special token, and "<pad>" in a caption must become the word "pad".
        return self._tokenize(text)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        words = [word for word in _WHITESPACE_SPLIT.split(self.normalize_text(text)) if word]
        # DMVR adds the markers as words before the lookup and the cut to `max_length`, so they are truncated
        # like any word (an over-long text loses its <eos>).
        if self.prepend_bos:
            words = [self.bos_token] + words
        if self.append_eos:
            words = words + [self.eos_token]
        return words

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.vocab[self.unk_token])

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, self.unk_token)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def __call__(self, text=None, *args, padding="max_length", truncation=True, max_length=None, **kwargs):
        """Tokenize like DMVR: by default every text gives exactly `self.max_length` ids (padded or cut)."""
        if max_length is None:
            max_length = self.max_length
        if self.vocab_size <= 4 and text is not None:
            warnings.warn(
                "VattTokenizer has no word vocabulary (only the special tokens), so every word maps to <unk>. "
                "Load VATT's `howto100m_en.txt` with `VattTokenizer(vocab_file=...)`.",
                stacklevel=2,
            )
        return super().__call__(text, *args, padding=padding, truncation=truncation, max_length=max_length, **kwargs)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory.")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + self.vocab_files_names["vocab_file"])
        ordered = sorted(self.vocab.items(), key=lambda item: item[1])
        # Contiguous ids from 0 are written as DMVR's one-word-per-line format; otherwise as `id word` lines.
        contiguous = all(index == position for position, (_, index) in enumerate(ordered))
        with open(vocab_path, "w", encoding="utf-8") as handle:
            for word, index in ordered:
                handle.write(f"{word}\n" if contiguous else f"{index} {word}\n")
        return (vocab_path,)


# --------------------------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------------------------


class VattProcessor(AudioVisualProcessor):
    r"""
    One entry point for VATT inputs: video files (decoded once for frames and audio), frames, waveforms and text.

    Args:
        feature_extractor ([`VattFeatureExtractor`], *optional*): audio windows; default settings if omitted.
        video_processor ([`VattVideoProcessor`], *optional*): frame views; default settings if omitted.
        tokenizer ([`VattTokenizer`], *optional*): word ids; without one, a tokenizer with only the special tokens.

    `processor(videos=path or [paths])` decodes each file once with `hf_av.media.decode_media` at the video
    processor's frame rate (25 fps) and the feature extractor's sampling rate (48 kHz, mono), and returns
    `pixel_values` `[B, views, T, 3, H, W]` plus, when the files have audio, `input_values`
    `[B, clips, num_samples]`. Arrays in memory go through `videos=`/`images=` (frames) and `audio=` (with
    `sampling_rate=`); `text=` gives `input_ids` and `attention_mask` `[B, 16]`.
    """

    def __init__(
        self,
        feature_extractor: VattFeatureExtractor | None = None,
        video_processor: VattVideoProcessor | None = None,
        tokenizer: VattTokenizer | None = None,
        **kwargs,
    ):
        feature_extractor = VattFeatureExtractor() if feature_extractor is None else feature_extractor
        video_processor = VattVideoProcessor() if video_processor is None else video_processor
        tokenizer = VattTokenizer() if tokenizer is None else tokenizer
        super().__init__(feature_extractor, video_processor, tokenizer, **kwargs)

    # `AudioVisualProcessor.from_pretrained` loads each part with these concrete classes, so loading works before
    # a VattConfig registers the Auto classes.
    sub_processor_classes = {
        "feature_extractor": VattFeatureExtractor,
        "video_processor": VattVideoProcessor,
        "tokenizer": VattTokenizer,
    }
    call_options = ("num_test_clips", "multi_crop", "frame_rate")

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
        # The base class checks against Transformers' generic base classes by name, which fails for video
        # processors when torchvision is not installed (the video mapping is then a placeholder object); the
        # concrete VATT classes are the meaningful check anyway.
        expected = self.sub_processor_classes[argument_name]
        if not isinstance(argument, expected):
            raise TypeError(
                f"{self.__class__.__name__}: `{argument_name}` must be a {expected.__name__}, got "
                f"{type(argument).__name__}."
            )
        return expected

    @property
    def model_input_names(self) -> list[str]:
        return ["input_values", "pixel_values", "input_ids", "attention_mask"]

    def __call__(
        self,
        text: str | list[str] | None = None,
        videos: Any = None,
        audio: Any = None,
        images: Any = None,
        sampling_rate: int | None = None,
        decode_audio: bool = True,
        return_tensors: str | None = None,
        modalities: str | list[str] | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            text (`str` or `list[str]`, *optional*): captions, tokenised to `max_length` ids each.
            videos (*optional*):
                A file (path, `bytes` or binary file object) or a list of files, decoded once each; or frames in
                memory, in any form `VattVideoProcessor` accepts.
            audio (*optional*): waveforms in memory, in any form `VattFeatureExtractor` accepts.
            images (*optional*): frames in memory (same as array `videos=`); not together with `videos`.
            sampling_rate (`int`, *optional*): rate of `audio`.
            decode_audio (`bool`, *optional*, defaults to `True`): also read the audio tracks of video files.
            return_tensors (`str`, *optional*): `"pt"`, `"np"` or `None`.
            modalities (*optional*): what to return from files: `"visual"` (frames only; the audio track is not
                read), `"audio"` (the audio track only; frames are not decoded), `"audio-visual"` (both; a file
                without audio is an error), a list of `"audio"` / `"visual"` / `"text"`, or `None` / `"available"`
                (frames, plus audio when every file has it). `"text"` in a list requires `text=`.
            kwargs: passed to the video processor (`num_test_clips`, `multi_crop`, `frame_rate`).
        """
        wanted = self._wanted_modalities(modalities, text)
        if wanted is not None:
            if "audio" not in wanted:
                decode_audio = False
            if "visual" not in wanted and _is_path_input(images if images is not None else videos):
                if "audio" not in wanted:
                    raise ValueError("modalities asks for neither audio nor visual input, but video files were given.")
                return self._audio_of_files(videos if videos is not None else images, text, return_tensors)
        if text is None and videos is None and audio is None and images is None:
            raise ValueError("Nothing to process: pass at least one of `text`, `videos`, `audio` or `images`.")
        if videos is not None and images is not None:
            raise ValueError("Pass frames through either `videos` or `images`, not both.")
        frames = images if images is not None else videos
        data: dict[str, Any] = {}

        if _is_path_input(frames):
            if audio is not None and decode_audio:
                raise ValueError(
                    "Got both video files (whose audio is decoded) and `audio`; pass `decode_audio=False` to use "
                    "the given audio instead."
                )
            unknown = set(kwargs) - {"num_test_clips", "multi_crop"}
            if unknown:
                raise TypeError(f"Unexpected arguments {sorted(unknown)} for video files.")
            pixel_values, decoded_audio = self._decode_files(
                frames,
                decode_audio=decode_audio,
                num_test_clips=kwargs.get("num_test_clips"),
                multi_crop=kwargs.get("multi_crop"),
                require_audio=wanted is not None and "audio" in wanted,
            )
            data["pixel_values"] = pixel_values
            if decoded_audio is not None:
                data.update(
                    self.feature_extractor(decoded_audio, sampling_rate=self.feature_extractor.sampling_rate)
                )
        elif frames is not None:
            data.update(self.video_processor(frames, **kwargs))
        elif kwargs:
            raise TypeError(f"Unexpected arguments {sorted(kwargs)} (they only apply to video frames).")
        if audio is not None:
            data.update(self.feature_extractor(audio, sampling_rate=sampling_rate))
        if text is not None:
            data.update(self.tokenizer(text))
        return BatchFeature(data, tensor_type=return_tensors)

    @staticmethod
    def _wanted_modalities(modalities, text) -> set[str] | None:
        """``modalities=`` as a set of names (``None`` for the default: whatever the inputs give)."""
        if modalities is None or modalities == "available":
            return None
        if isinstance(modalities, str):
            resolved = resolve_modalities(modalities, owner="VattProcessor: modalities")
            wanted = {"audio", "visual"} if resolved == "audio-visual" else {resolved}
        else:
            names = list(modalities) if isinstance(modalities, (list, tuple, set, frozenset)) else [modalities]
            unknown = [name for name in names if name not in ("audio", "visual", "video", "text")]
            if unknown or not names:
                raise ValueError(
                    f"VattProcessor: modalities must be one of {MODALITIES} or a list of 'audio', 'visual', 'text'; "
                    f"got {modalities!r}."
                )
            wanted = {resolve_modalities(n, owner="VattProcessor: modalities") if n != "text" else n for n in names}
        if "text" in wanted and text is None:
            raise ValueError("VattProcessor: modalities includes 'text' but no text= was given.")
        if "text" not in wanted and text is not None:
            raise ValueError(f"VattProcessor: text= was given but modalities={modalities!r} leaves text out.")
        return wanted

    def _audio_of_files(self, sources, text, return_tensors) -> BatchFeature:
        """``modalities="audio"`` for files: only the audio tracks are decoded."""
        waveforms = []
        for source in self._as_sources(sources):
            decoded = self.decode(source, decode_audio=True, decode_video=False)
            if decoded.audio is None or decoded.audio.shape[-1] == 0:
                raise ValueError(f"{describe_source(source)}: no audio could be decoded (modalities asks for audio).")
            waveforms.append(decoded.audio[0])
        data = dict(self.feature_extractor(waveforms, sampling_rate=self.feature_extractor.sampling_rate))
        if text is not None:
            data.update(self.tokenizer(text))
        return BatchFeature(data, tensor_type=return_tensors)

    def _media_decode_kwargs(
        self, frame_indices=None, decode_audio: bool = True, decode_video: bool = True, **unused
    ) -> dict[str, Any]:
        # VATT's readers are not released; the fixture's decode is `ffmpeg -vf fps=25` for frames and
        # `ffmpeg -ac 1 -ar 48000` for audio, which these settings reproduce.
        return {
            "video": decode_video,
            "audio": decode_audio,
            "frame_rate": self.video_processor.frame_rate,
            "frame_indices": frame_indices if decode_video else None,
            "sampling_rate": self.feature_extractor.sampling_rate,
            "audio_channels": "mono",
            "require_video": decode_video,
            "require_audio": not decode_video,
        }

    def _decode_files(self, paths: Any, decode_audio: bool, num_test_clips: int | None, multi_crop: bool | None,
                      require_audio: bool = False):
        """Decode each file once; only the frames the windows need are decoded when the frame count is known."""
        paths = self._as_sources(paths)
        video_processor = self.video_processor
        pixel_values, waveforms, silent = [], [], []
        for path in paths:
            planned: dict[str, Any] = {}

            def select_frames(info, planned=planned):
                # Windows are counted in the 25 fps sequence; when its length is exact, decode just their frames.
                planned["subset"] = True
                if info.num_frames is None or not info.num_frames_exact:
                    return []  # frames are decoded again below, all of them, once their count is known
                planned["length"] = int(info.num_frames)
                planned["windows"] = video_processor.sample_frame_indices(info.num_frames, num_test_clips)
                return np.unique(planned["windows"]).tolist()

            decoded = self.decode(path, frame_indices=select_frames, decode_audio=decode_audio)
            frames, windows = decoded.frames, planned.get("windows")
            if windows is not None and planned["length"] == decoded.num_video_frames and frames is not None:
                positions = np.minimum(np.searchsorted(decoded.frame_indices, windows), len(frames) - 1)
                if len(frames) == 0 or not np.array_equal(decoded.frame_indices[positions], windows):
                    windows = None
            else:
                windows = None
            if windows is None:
                # The frame count was estimated, or frames the windows need were missing: decode every frame and
                # sample from what is there, as for frames in memory.
                if planned.get("subset"):
                    frames = self.decode(path, decode_audio=False).frames
                if frames is None or len(frames) == 0:
                    raise ValueError(f"{path}: no video frames could be decoded.")
                frames = video_processor._check_clip(frames, len(pixel_values))
                positions = video_processor.sample_frame_indices(len(frames), num_test_clips)
            pixel_values.append(video_processor.process_window_frames(frames, positions, multi_crop=multi_crop))
            if decode_audio:
                if decoded.audio is None or decoded.audio.shape[-1] == 0:
                    silent.append(str(path))
                else:
                    waveforms.append(decoded.audio[0])
        if silent and require_audio:
            raise ValueError(f"Some video files have no audio track: {silent} (modalities asks for audio).")
        if not decode_audio or len(silent) == len(paths):
            # No audio anywhere (e.g. muted clips): return the frames alone rather than invent a waveform.
            return np.stack(pixel_values), None
        if silent:
            raise ValueError(
                f"Some video files have no audio track: {silent}. Process them separately or pass "
                "`decode_audio=False`."
            )
        return np.stack(pixel_values), waveforms


def _is_media_source(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike, bytes)) or hasattr(item, "read")


def _is_path_input(videos: Any) -> bool:
    # Files (paths, bytes, file objects) are decoded; anything else is frames already in memory.
    if _is_media_source(videos):
        return True
    return isinstance(videos, (list, tuple)) and len(videos) > 0 and all(_is_media_source(v) for v in videos)
