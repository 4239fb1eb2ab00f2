"""Shared base classes for every family's preprocessing (feature extractors, frame processors, processors).

Family modules only configure these: a feature extractor implements ``_extract``, an image processor sets
defaults, a processor says how to decode a file (``_media_decode_kwargs``) and which frames to keep.

Modality names are the same everywhere in hf_av: ``"audio"``, ``"visual"`` (and ``"text"`` for VATT).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor
from transformers.processing_utils import ProcessorMixin

from ..features.frames import (
    center_crop_frames,
    normalize_frames,
    rescale_frames,
    resize_frames,
    to_channels_first,
)
from ..features.resample import resample
from ..errors import MediaDecodingError
from ..features.validation import check_waveform

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AudioVisualProcessor",
    "FrameImageProcessor",
    "WaveformFeatureExtractor",
    "MODALITIES",
    "as_waveform_list",
    "describe_source",
    "resolve_modalities",
    "to_return_tensors",
]

# What a processor returns (the `modalities=` argument): both modalities (default), one of them, or whatever each
# file has.
MODALITIES = ("audio-visual", "audio", "visual", "available")
_MODALITY_NAMES = ("audio", "visual")


def resolve_modalities(modalities, *, owner: str = "modalities") -> str:
    """Normalise a ``modalities=`` value to one of :data:`MODALITIES`.

    Accepts ``None`` (both, ``"audio-visual"``), one of :data:`MODALITIES`, or a list of modality names
    (``["audio", "visual"]`` = ``"audio-visual"``). ``"video"`` (the pipelines' former name for the visual
    modality) still works with a ``FutureWarning``.
    """
    if modalities is None:
        return "audio-visual"
    names = [modalities] if isinstance(modalities, str) else modalities
    if not isinstance(names, (list, tuple, set, frozenset)) or not names:
        raise ValueError(f"{owner} must be one of {MODALITIES} or a list of {_MODALITY_NAMES}, got {modalities!r}.")
    normalised = []
    for name in names:
        if name == "video":
            warnings.warn(
                f'{owner}: "video" is deprecated as a modality name; use "visual".', FutureWarning, stacklevel=3
            )
            name = "visual"
        normalised.append(name)
    if isinstance(modalities, str):
        if normalised[0] not in MODALITIES:
            raise ValueError(
                f"{owner} must be one of {MODALITIES} (or a list of {_MODALITY_NAMES}), got {modalities!r}."
            )
        return normalised[0]
    unknown = sorted({name for name in normalised if name not in _MODALITY_NAMES}, key=str)
    if unknown:
        raise ValueError(f"{owner}: unknown modality name(s) {unknown}; expected names from {_MODALITY_NAMES}.")
    return "audio-visual" if set(normalised) == set(_MODALITY_NAMES) else normalised[0]


def describe_source(source) -> str:
    """How a media source is named in messages (a path as given; bytes and file objects by kind)."""
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if hasattr(source, "read"):
        return str(getattr(source, "name", "<file object>"))
    return str(source)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Keyword arguments of `from_pretrained` that say where files are, passed on to each sub-processor.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")

# More channels than this in a [C, N] clip almost surely means a channels-last [N, C] array.
_MAX_CHANNELS = 16


def check_setting(owner, name: str, value, *, minimum=None, exclusive: bool = False, integer: bool = False,
                  choices=None, optional: bool = False):
    """Refuse an invalid constructor setting with a ``ValueError`` naming the class and the field.

    Robustness fix: the preprocessing constructors accepted e.g. ``target_length=-1`` or ``sampling_rate=0`` and
    failed later inside torch (or silently produced empty features); they now fail at construction.
    """
    where = f"{type(owner).__name__}.{name}"
    if value is None and optional:
        return
    if choices is not None:
        if value not in choices:
            raise ValueError(f"{where} must be one of {tuple(choices)}, got {value!r}.")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{where} must be a finite number, got {value!r}.")
    if integer and float(value) != int(value):
        raise ValueError(f"{where} must be an integer, got {value!r}.")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{where} must be {'>' if exclusive else '>='} {minimum}, got {value!r}.")


def check_sampling_rate(value, what: str) -> int:
    """A sampling rate given with raw audio: a positive integer (Hz); ``44100.0`` is accepted, ``44100.5`` is not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
            or float(value) != int(value) or int(value) <= 0:
        raise ValueError(f"{what}: sampling_rate must be a positive integer (Hz), got {value!r}.")
    return int(value)


def to_return_tensors(data: dict[str, torch.Tensor], return_tensors: str | None) -> BatchFeature:
    """Wrap torch outputs in a ``BatchFeature``: torch for ``"pt"``, numpy otherwise (``None`` or ``"np"``)."""
    if return_tensors not in (None, "pt", "np"):
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
    if return_tensors == "pt":
        return BatchFeature(data=data, tensor_type="pt")
    return BatchFeature(data={key: value.numpy() for key, value in data.items()}, tensor_type=return_tensors)


def _as_tensor(array, name: str) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        tensor = array.detach().cpu()
    elif isinstance(array, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    elif isinstance(array, (list, tuple)) and array and all(isinstance(v, (int, float)) for v in array):
        tensor = torch.tensor(array, dtype=torch.float32)
    else:
        raise ValueError(f"{name}: expected a numpy array, a torch tensor or a list of floats, got {type(array).__name__}.")
    if tensor.dtype in (torch.int16, torch.int32):
        raise ValueError(
            f"{name}: integer PCM ({tensor.dtype}) is ambiguous; convert to float in [-1, 1] first "
            "(e.g. int16 / 32768, as torchaudio.load does)."
        )
    if not tensor.is_floating_point():
        raise ValueError(f"{name}: expected floating-point samples, got dtype {tensor.dtype}.")
    return tensor.to(torch.float32)


def as_waveform_list(raw_audio) -> list[torch.Tensor]:
    """Normalise audio input to a list of float32 ``[C, N]`` tensors (one per clip).

    Layout rules (the time axis is always last):
      * a list/tuple of arrays: one clip each, ``[N]`` (mono) or ``[C, N]`` (channels first);
      * a single ``[N]`` array: one mono clip;
      * a single ``[B, N]`` array: a batch of mono clips (Transformers' convention);
      * a single ``[B, C, N]`` array: a batch of multi-channel clips.
    Wrap one multi-channel clip in a list: ``fe([stereo], ...)``.
    """
    if isinstance(raw_audio, (list, tuple)) and raw_audio and not isinstance(raw_audio[0], (int, float)):
        clips = [_as_tensor(clip, f"audio[{i}]") for i, clip in enumerate(raw_audio)]
        for i, clip in enumerate(clips):
            if clip.ndim not in (1, 2):
                raise ValueError(f"audio[{i}]: expected [N] or [C, N], got shape {tuple(clip.shape)}.")
    else:
        if isinstance(raw_audio, (list, tuple)) and not raw_audio:
            raise ValueError("audio: empty list.")
        tensor = _as_tensor(raw_audio, "audio")
        if tensor.ndim == 1:
            clips = [tensor]
        elif tensor.ndim == 2:
            clips = list(tensor)
        elif tensor.ndim == 3:
            clips = list(tensor)
        else:
            raise ValueError(f"audio: expected [N], [B, N] or [B, C, N], got shape {tuple(tensor.shape)}.")
    waveforms = []
    for i, clip in enumerate(clips):
        clip = clip.unsqueeze(0) if clip.ndim == 1 else clip
        if clip.numel() == 0:
            raise ValueError(f"audio[{i}]: empty audio (shape {tuple(clip.shape)}).")
        if clip.shape[0] > _MAX_CHANNELS or clip.shape[0] > clip.shape[1]:
            raise ValueError(
                f"audio[{i}]: shape {tuple(clip.shape)} looks channels-last; pass [channels, samples]."
            )
        check_waveform(clip, name=f"audio[{i}]")
        waveforms.append(clip)
    return waveforms


class WaveformFeatureExtractor(SequenceFeatureExtractor):
    """Base of hf_av's audio feature extractors: input checks, resampling, batching; subclasses build features.

    Args:
        feature_size (`int`): size of the last axis of the features (mel bins, or 1 for waveforms).
        sampling_rate (`int`): the rate the model expects, in Hz.
        padding_value (`float`): value used for padding by ``SequenceFeatureExtractor.pad``.
        resample_input (`bool`, *optional*, defaults to `True`): resample audio given at another
            ``sampling_rate`` (windowed-sinc, :func:`hf_av.features.resample`); if `False` such input is refused.
    """

    model_input_names = ["input_values"]

    def __init__(self, feature_size: int, sampling_rate: int, padding_value: float = 0.0, resample_input: bool = True, **kwargs):
        kwargs.setdefault("return_attention_mask", False)  # fixed-size outputs: no padding mask
        check_setting(self, "sampling_rate", sampling_rate, minimum=0, exclusive=True, integer=True)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.resample_input = resample_input

    def prepare_waveforms(self, raw_audio, sampling_rate: int | None) -> list[torch.Tensor]:
        """Checked float32 ``[C, N]`` clips at ``self.sampling_rate``."""
        waveforms = as_waveform_list(raw_audio)
        if sampling_rate is None:
            raise ValueError(
                f"{type(self).__name__}: pass `sampling_rate=` with raw audio (this extractor expects "
                f"{self.sampling_rate} Hz); silent rate mismatches give wrong features."
            )
        # Robustness fix: a fractional rate (44100.5) used to be truncated by int() without notice.
        sampling_rate = check_sampling_rate(sampling_rate, type(self).__name__)
        if sampling_rate != self.sampling_rate:
            if not self.resample_input:
                raise ValueError(
                    f"{type(self).__name__} expects {self.sampling_rate} Hz audio, got {sampling_rate} Hz "
                    "(resample_input=False)."
                )
            waveforms = [resample(w, int(sampling_rate), int(self.sampling_rate)) for w in waveforms]
        return waveforms

    def _extract(self, waveforms: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        """Features for one clip or a batch (see :func:`as_waveform_list` for accepted layouts)."""
        waveforms = self.prepare_waveforms(raw_audio, sampling_rate)
        return to_return_tensors(self._extract(waveforms, **kwargs), return_tensors)


class FrameImageProcessor(BaseImageProcessor):
    """Frame pipeline shared by the families: rescale -> resize -> centre crop -> normalise, in torch.

    Args:
        do_resize (`bool`): resize frames.
        size (`dict`): ``{"shortest_edge": n}`` (keep aspect ratio) or ``{"height": h, "width": w}`` (exact).
        interpolation (`str`): ``"bilinear"``, ``"bicubic"`` or ``"nearest"`` (``align_corners=False``).
        antialias (`bool`): low-pass filter when downscaling (PIL-like); off for torchvision < 0.17 behaviour.
        do_center_crop (`bool`): centre crop after resizing.
        crop_size (`dict`): ``{"height": h, "width": w}`` of the crop.
        do_rescale (`bool`): multiply by ``rescale_factor`` (uint8 -> [0, 1]).
        rescale_factor (`float`): scale applied when ``do_rescale``.
        do_normalize (`bool`): ``(x - image_mean) / image_std`` per channel.
        image_mean, image_std (`list[float]`): normalisation constants (ImageNet by default).
    """

    model_input_names = ["pixel_values"]
    do_resize = True
    size = {"shortest_edge": 224}
    interpolation = "bilinear"
    antialias = True
    do_center_crop = False
    crop_size = None
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD
    _settings = (
        "do_resize", "size", "interpolation", "antialias", "do_center_crop", "crop_size",
        "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std",
    )  # fmt: skip

    def __init__(self, **kwargs):
        settings = {name: kwargs.pop(name, None) for name in self._settings}
        super().__init__(**kwargs)
        for name, value in settings.items():
            setattr(self, name, list(value) if isinstance(value, tuple) else (value if value is not None else _copy(getattr(type(self), name))))
        self._check_settings()

    def _check_settings(self) -> None:
        if self.do_resize and not (
            isinstance(self.size, dict) and ("shortest_edge" in self.size or {"height", "width"} <= set(self.size))
        ):
            raise ValueError(f"size must be {{'shortest_edge': n}} or {{'height': h, 'width': w}}, got {self.size!r}.")
        if self.do_center_crop and not (isinstance(self.crop_size, dict) and {"height", "width"} <= set(self.crop_size)):
            raise ValueError(f"crop_size must be {{'height': h, 'width': w}}, got {self.crop_size!r}.")
        # Robustness fix: sizes, interpolation and normalisation constants were not checked, so e.g.
        # size={"shortest_edge": -1} or image_std=[0, 1, 1] failed (or gave inf) only when frames arrived.
        if self.do_resize:
            for key, value in self.size.items():
                check_setting(self, f"size[{key!r}]", value, minimum=1, integer=True)
            check_setting(self, "interpolation", self.interpolation, choices=("nearest", "bilinear", "bicubic"))
        if self.do_center_crop:
            for key in ("height", "width"):
                check_setting(self, f"crop_size[{key!r}]", self.crop_size[key], minimum=1, integer=True)
        if self.do_rescale:
            check_setting(self, "rescale_factor", self.rescale_factor, minimum=0, exclusive=True)
        if self.do_normalize:
            for name in ("image_mean", "image_std"):
                values = getattr(self, name)
                if not isinstance(values, (list, tuple)) or len(values) != 3:
                    raise ValueError(f"{type(self).__name__}.{name} must be 3 numbers (RGB), got {values!r}.")
                for value in values:
                    check_setting(self, name, value, minimum=0 if name == "image_std" else None,
                                  exclusive=name == "image_std")

    def preprocess_frames(self, frames, **overrides) -> torch.Tensor:
        """Frames ``[..., H, W, C]`` or ``[..., C, H, W]`` (uint8 or float) -> float32 ``[..., 3, H', W']``."""
        settings = {name: overrides.pop(name, getattr(self, name)) for name in self._settings}
        if overrides:
            raise ValueError(f"Unknown image processing arguments: {sorted(overrides)}.")
        frames = to_channels_first(frames)
        if frames.shape[-1] == 0 or frames.shape[-2] == 0:
            # Robustness fix: a 0-pixel side reached the resize arithmetic and raised ZeroDivisionError.
            raise ValueError(f"Frames must be at least 1x1 pixels, got shape {tuple(frames.shape)}.")
        if frames.shape[-3] == 4:
            frames = frames[..., :3, :, :]  # drop alpha
        if frames.shape[-3] == 1:
            frames = frames.expand(*frames.shape[:-3], 3, *frames.shape[-2:])
        if frames.dtype == torch.uint8 and not settings["do_rescale"]:
            frames = frames.to(torch.float32)
        elif settings["do_rescale"]:
            frames = rescale_frames(frames, settings["rescale_factor"])
        else:
            frames = frames.to(torch.float32)
        if settings["do_resize"]:
            size = settings["size"]
            target = size["shortest_edge"] if "shortest_edge" in size else (size["height"], size["width"])
            frames = resize_frames(frames, target, mode=settings["interpolation"], antialias=settings["antialias"])
        if settings["do_center_crop"]:
            frames = center_crop_frames(frames, (settings["crop_size"]["height"], settings["crop_size"]["width"]))
        if settings["do_normalize"]:
            frames = normalize_frames(frames, settings["image_mean"], settings["image_std"])
        return frames.contiguous()

    def preprocess(self, images, return_tensors: str | None = None, **overrides) -> BatchFeature:
        """``pixel_values`` ``[B, 3, H, W]`` for images, ``[B, T, 3, H, W]`` for videos.

        Accepts one image (``[H, W, C]`` / ``[C, H, W]``, PIL), a batch array ``[B, H, W, C]``, a list of images
        (sizes may differ), a list of equal-length videos (``[T, H, W, C]`` each) or a ``[B, T, H, W, C]`` array.
        """
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("images: empty list.")
            tensors = [_image_to_tensor(image, f"images[{i}]") for i, image in enumerate(images)]
            if len({tuple(t.shape) for t in tensors}) == 1:
                pixel_values = self.preprocess_frames(torch.stack(tensors), **overrides)
            else:  # different input sizes: resize one by one, outputs share the configured size
                pixel_values = torch.stack([self.preprocess_frames(t, **overrides) for t in tensors])
        else:
            tensor = _image_to_tensor(images, "images")
            if tensor.ndim not in (3, 4, 5):
                raise ValueError(f"images: expected 3-, 4- or 5-dim input, got shape {tuple(tensor.shape)}.")
            pixel_values = self.preprocess_frames(tensor.unsqueeze(0) if tensor.ndim == 3 else tensor, **overrides)
        return to_return_tensors({"pixel_values": pixel_values}, return_tensors)

    def __call__(self, images, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        return self.preprocess(images, return_tensors=return_tensors, **kwargs)


def _copy(value):
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, (list, tuple)) else value


def _image_to_tensor(image, name: str) -> torch.Tensor:
    if hasattr(image, "convert") and hasattr(image, "size") and not isinstance(image, (np.ndarray, torch.Tensor)):
        image = np.asarray(image.convert("RGB"))  # PIL image
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name}: expected a numpy array, torch tensor or PIL image, got {type(image).__name__}.")
    return image


class AudioVisualProcessor(ProcessorMixin):
    """Base of the family processors: sub-processor loading by concrete class, and file decoding.

    Subclasses set ``sub_processor_classes`` (attribute name -> class) and implement
    ``_media_decode_kwargs`` (how to decode a file like the original extraction did) and
    ``_pixel_values_from_images`` (how ``images=`` arrays map to ``pixel_values``). ``from_pretrained``
    loads each sub-processor with its concrete class, so it works with or without Auto registration.
    """

    sub_processor_classes: ClassVar[dict[str, type]] = {}
    # Whether one decoded clip yields one frame ([B, 3, H, W]) or a frame sequence ([B, T, 3, H, W]).
    single_frame_per_clip: ClassVar[bool] = False
    # Family options accepted by __call__ (anything else is a typo and is refused).
    call_options: ClassVar[tuple[str, ...]] = ()

    def _missing_modality_hint(self) -> str:
        return ' Pass modalities="available" (or "audio" / "visual") to process the modality that is there.'

    @staticmethod
    def _modality_decode_flags(modalities: str) -> dict[str, bool]:
        """What ``decode_media`` reads for ``modalities``; a missing track of a two-modality request is reported by
        ``__call__`` (with the way out), a missing track of a one-modality request by the decoder."""
        return {
            "video": modalities != "audio",
            "audio": modalities != "visual",
            "require_audio": modalities == "audio",
            "require_video": modalities == "visual",
        }

    @classmethod
    def _load_sub_processors(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs) -> dict[str, Any]:
        """Each sub-processor loaded with its concrete class (``sub_processor_classes``), not by Auto-class lookup.

        A nested ``processor_config.json`` (Transformers >= 5.x) carries each part's settings under its attribute
        name; otherwise the part reads its own file (``preprocessor_config.json``, tokenizer files) from the folder.
        The Auto classes find a part by its saved ``*_type`` name only when that class is registered with a model
        config, which LAVisH / DG-SCT / VATT preprocessing must not depend on (nor remote code, where the classes
        come from the exported folder).
        """
        loaded = {}
        for name in cls.get_attributes():
            if kwargs.get(name) is not None:  # given by the caller
                loaded[name] = kwargs[name]
                continue
            sub_class = cls.sub_processor_classes.get(name)
            if sub_class is None:
                continue
            nested = (processor_dict or {}).get(name)
            if isinstance(nested, dict) and hasattr(sub_class, "from_dict"):
                loaded[name] = sub_class.from_dict(nested)
            else:
                hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if kwargs.get(key) is not None}
                loaded[name] = sub_class.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return loaded

    @classmethod
    def _resolve_subprocessors(cls, pretrained_model_name_or_path, processor_dict, **kwargs):
        # Transformers >= 5.25 resolves sub-processors here, through the Auto classes by saved class name; give it
        # the concrete ones so it only has to place them.
        loaded = cls._load_sub_processors(pretrained_model_name_or_path, processor_dict, **kwargs)
        return super()._resolve_subprocessors(pretrained_model_name_or_path, processor_dict, **{**kwargs, **loaded})

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # The same hook in Transformers releases before 5.25 (positional sub-processors).
        loaded = cls._load_sub_processors(pretrained_model_name_or_path, processor_dict, **kwargs)
        attributes = cls.get_attributes()
        if not all(name in loaded for name in attributes):
            return super()._get_arguments_from_pretrained(pretrained_model_name_or_path, processor_dict, **kwargs)
        return [loaded[name] for name in attributes]

    def _media_decode_kwargs(self, **call_kwargs) -> dict[str, Any]:
        """Arguments for ``hf_av.media.decode_media`` that emulate the family's offline extraction."""
        raise NotImplementedError

    def decode(self, source, **call_kwargs):
        """Decode one file (path, URL, bytes or file object) once, audio and frames together."""
        from ..media import decode_media  # PyAV stays off the import path of hf_av.features

        kwargs = self._media_decode_kwargs(**call_kwargs)
        select = kwargs.get("frame_indices")
        if not callable(select):
            return decode_media(source, **kwargs)
        asked: dict[str, Any] = {}

        def recording(info):
            asked["info"], asked["indices"] = info, list(select(info))
            return asked["indices"]

        decoded = decode_media(source, **{**kwargs, "frame_indices": recording})
        # Robustness fix: a damaged file whose index promises more frames than it holds (truncated avi, mp4 with
        # the index in front) gave frame choices past the real end, so the processor got no frames at all. The
        # warning has been issued; choose again among the frames that are really there (decoded.num_video_frames
        # is the count found once the stream ran out).
        got = 0 if decoded.frame_indices is None else len(decoded.frame_indices)
        real = decoded.num_video_frames
        if "info" in asked and got < len(asked["indices"]) and real and real < (asked["info"].num_frames or 0):
            from dataclasses import replace

            info = replace(asked["info"], num_frames=real, num_frames_exact=True)
            decoded = decode_media(source, **{**kwargs, "frame_indices": lambda _: select(info)})
        return decoded

    @staticmethod
    def _as_sources(videos) -> list:
        if isinstance(videos, (str, os.PathLike, bytes)) or hasattr(videos, "read"):
            return [videos]
        if isinstance(videos, Sequence) and not isinstance(videos, str) and len(videos) > 0:
            return list(videos)
        raise ValueError(f"videos: expected a path or a non-empty list of paths, got {videos!r:.80}.")

    def _pixel_values_from_images(self, images, **call_kwargs) -> torch.Tensor:
        return self.image_processor(images, return_tensors="pt")["pixel_values"]

    def _audio_kwargs(self, **call_kwargs) -> dict[str, Any]:
        return {}

    def __call__(
        self,
        videos=None,
        audio=None,
        images=None,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        modalities: str | list[str] | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Model-ready inputs from files (``videos=``) or from arrays (``audio=`` and/or ``images=``).

        Args:
            videos: a path (or bytes / file object) or a list of them; each is decoded once with
                ``hf_av.media.decode_media`` the way the original extraction scripts did.
            audio: raw audio (see :func:`as_waveform_list`), with ``sampling_rate``.
            images: frames (see the image processor); for multi-frame families one ``[T, H, W, C]`` array
                is one clip.
            return_tensors: ``"pt"`` for torch tensors, ``None``/``"np"`` for numpy.
            modalities: what to return. ``"audio-visual"`` (default, also ``None`` or ``["audio", "visual"]``)
                needs both and names a file that lacks one; ``"audio"`` gives ``input_values`` only (from files,
                only the audio track is decoded); ``"visual"`` gives ``pixel_values`` only; ``"available"``
                returns whatever the files have (every file of one call must have the same modalities). What
                the model does with one modality is the model's decision (from its config), not the processor's.
            kwargs: family options (e.g. CAV-MAE's ``frame_index``).
        """
        unknown = sorted(set(kwargs) - set(self.call_options))
        if unknown:
            raise ValueError(f"{type(self).__name__} got unknown arguments {unknown}; options: {list(self.call_options)}.")
        modalities = resolve_modalities(modalities, owner=f"{type(self).__name__}: modalities")
        if videos is not None:
            if audio is not None or images is not None:
                raise ValueError("Pass either videos= (files) or audio=/images= (arrays), not both.")
            audio, images, rates, present = [], [], set(), {}
            for source in self._as_sources(videos):
                name = describe_source(source)
                decoded = self.decode(source, modalities=modalities, **kwargs)
                has_audio = decoded.audio is not None and decoded.sampling_rate is not None and decoded.audio.size > 0
                has_frames = decoded.frames is not None and len(decoded.frames) > 0
                if modalities in ("audio-visual", "audio") and not has_audio:
                    raise MediaDecodingError(f"{name}: no audio could be decoded (no audio track, or an unreadable "
                                             "one)." + self._missing_modality_hint())
                if modalities in ("audio-visual", "visual") and not has_frames:
                    raise MediaDecodingError(f"{name}: no video frames could be decoded."
                                             + self._missing_modality_hint())
                if not has_audio and not has_frames:
                    raise MediaDecodingError(f"{name}: neither audio nor video frames could be decoded.")
                present[name] = (has_audio and modalities != "visual", has_frames and modalities != "audio")
                if present[name][0]:
                    audio.append(decoded.audio)
                    rates.add(int(decoded.sampling_rate))
                if present[name][1]:
                    images.append(decoded.frames)
            if len(set(present.values())) > 1:
                # modalities="available": one batch cannot mix clips with and without a modality
                raise ValueError(
                    "These files do not have the same modalities, so they cannot form one batch: "
                    + "; ".join(f"{name}: {'audio' if a else 'no audio'}, {'frames' if v else 'no frames'}"
                                for name, (a, v) in present.items())
                    + ". Process them separately."
                )
            data = {}
            if images:
                pixel_values = torch.stack(
                    [self.image_processor.preprocess_frames(torch.from_numpy(np.asarray(f))) for f in images]
                )
                if self.single_frame_per_clip and pixel_values.shape[1] == 1:
                    pixel_values = pixel_values[:, 0]
                data["pixel_values"] = pixel_values
            if audio:
                if len(rates) != 1:
                    raise ValueError(f"Decoded audio came back at several rates {sorted(rates)}; expected one.")
                sampling_rate = rates.pop()
            else:
                audio = None
        elif audio is None and images is None:
            raise ValueError("Nothing to process: pass videos=, audio= or images=.")
        else:
            if modalities == "audio" and images is not None or modalities == "visual" and audio is not None:
                raise ValueError(f"modalities={modalities!r}, but both audio= and images= were given.")
            data = {} if images is None else {"pixel_values": self._pixel_values_from_images(images, **kwargs)}
            if self.single_frame_per_clip and data and data["pixel_values"].ndim == 5 \
                    and data["pixel_values"].shape[1] == 1:
                data["pixel_values"] = data["pixel_values"][:, 0]  # one frame per clip, as from files
        if audio is not None:
            features = self.feature_extractor(
                audio, sampling_rate=sampling_rate, return_tensors="pt", **self._audio_kwargs(**kwargs)
            )
            data = {**dict(features), **data}
        if "input_values" in data and "pixel_values" in data and len(data["input_values"]) != len(data["pixel_values"]):
            # Robustness fix: audio for 1 clip with frames of 2 clips used to give mismatched batch sizes silently.
            raise ValueError(
                f"audio gives {len(data['input_values'])} clip(s) but images give {len(data['pixel_values'])}; pass "
                "one audio clip per image (CAV-MAE) or per frame sequence (multi-frame families)."
            )
        return to_return_tensors(data, return_tensors)


def kaldi_fbank_per_clip(signals: list[torch.Tensor], **fbank_kwargs) -> list[torch.Tensor]:
    """Kaldi fbank of 1-D signals of any lengths: equal-length signals share one batched call."""
    from ..features.kaldi import kaldi_fbank

    by_length: dict[int, list[int]] = {}
    for index, signal in enumerate(signals):
        by_length.setdefault(signal.shape[-1], []).append(index)
    outputs: list[torch.Tensor | None] = [None] * len(signals)
    for indices in by_length.values():
        features = kaldi_fbank(torch.stack([signals[i] for i in indices]), channel=None, **fbank_kwargs)
        for row, index in enumerate(indices):
            outputs[index] = features[row]
    return outputs


def pad_or_cut_rows(features: torch.Tensor, target_length: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``[T, F]`` at the end with ``value`` or keep the first ``target_length`` rows."""
    missing = target_length - features.shape[0]
    if missing > 0:
        return torch.nn.functional.pad(features, (0, 0, 0, missing), value=value)
    return features[:target_length]


class SegmentedClipProcessor(AudioVisualProcessor):
    """Processors of the AVE-style families (LAVisH, DG-SCT): ``num_segments`` frames per clip, the feature
    extractor's ``num_segments`` (one frame per audio segment, so a processor sized for a small config pairs them).

    From files: frames resampled to ``frame_rate`` fps (the extraction's ``ffmpeg -r 8``), then the frames
    ``np.linspace(1, n, num_segments, dtype=int)`` (1-based) of that sequence; audio decoded at the feature
    extractor's rate with ``audio_channels``. ``images=``: one ``[T, H, W, C]`` array is one clip; a list of
    them or a ``[B, T, H, W, C]`` array is a batch. ``pixel_values`` is ``[B, T, 3, H, W]``.
    """

    frame_rate: ClassVar[float] = 8.0
    audio_channels: ClassVar[str] = "keep"

    @property
    def num_segments(self) -> int:
        return int(getattr(self.feature_extractor, "num_segments", 10))

    def _media_decode_kwargs(self, modalities="audio-visual", **unused):
        from ..features.frames import linspace_frame_indices

        def select(info):
            if not info.num_frames:
                raise ValueError("Frame sampling needs the number of frames of the (resampled) video.")
            return linspace_frame_indices(info.num_frames, self.num_segments)

        return {
            "frame_rate": self.frame_rate,
            "frame_rate_mode": "cli_rate",  # the extraction ran `ffmpeg -i clip -r 8 %04d.jpg`
            "frame_indices": select,
            "sampling_rate": self.feature_extractor.sampling_rate,
            "audio_channels": self.audio_channels,
            **self._modality_decode_flags(modalities),
        }

    def _pixel_values_from_images(self, images, **unused):
        if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
            images = images[None]  # one clip of T frames
        pixel_values = self.image_processor(images, return_tensors="pt")["pixel_values"]
        if pixel_values.ndim != 5:
            raise ValueError(
                f"{type(self).__name__} expects frame sequences ([T, H, W, C] per clip), got images giving "
                f"pixel_values of shape {tuple(pixel_values.shape)}."
            )
        return pixel_values
