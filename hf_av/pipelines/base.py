"""Shared input handling of the hf_av pipelines: one media item (file, bytes or arrays) -> model-ready tensors.

Every audio-visual pipeline accepts the same kinds of input for one clip:

* a path (`str` / `os.PathLike`), `bytes` or a binary file object of a media file;
* a dict of arrays or files: `{"audio": waveform | path | bytes, "sampling_rate": int, "frames": array | path}`
  (`"raw"` / `"array"` are accepted for `"audio"` like Transformers' audio pipelines, `"video"` for `"frames"`).
  A waveform is `[samples]` or `[channels, samples]`; frames are `[H, W, 3]` (one frame) or `[T, H, W, 3]`.

All of them go through the family processor (`processor(videos=..., modalities=...)` for files,
`processor(audio=..., images=...)` for arrays): there is one path from a file to tensors, the processor's.
`modality` chooses what is fed to the model: `"audio-visual"`, `"audio"`, `"visual"` or `None` (= whatever the
input has; `"video"` is a deprecated name of `"visual"`). A modality the input lacks is an error naming the
input. Pipelines pass inputs only: what the model does with one modality is the model's decision (its config).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..errors import HfAvError, MediaDecodingError
from ..processing.base import describe_source, resolve_modalities

__all__ = ["MODALITIES", "AudioVisualInputMixin", "PreparedClip", "resolve_frames_option", "resolve_modality"]

MODALITIES = ("audio-visual", "audio", "visual")
_AUDIO_KEYS = ("audio", "raw", "array")
_FRAME_KEYS = ("frames", "video", "images")


def _is_media_source(value) -> bool:
    return isinstance(value, (str, os.PathLike, bytes, bytearray)) or hasattr(value, "read")


def resolve_modality(modality, argument: str = "modality", allowed=MODALITIES):
    """A pipeline's modality argument in the shared vocabulary (`None` stays `None`); `"video"` -> `"visual"`
    with a `FutureWarning`; anything else outside `allowed` is a `ValueError` naming the argument."""
    if modality is None:
        return None
    if modality not in (*allowed, "video"):
        raise ValueError(f"{argument} must be one of {tuple(allowed)} or None, got {modality!r}")
    return resolve_modalities(modality, owner=argument) if modality == "video" else modality


def resolve_frames_option(processor, frames) -> dict[str, Any]:
    """Processor call options for the requested frames.

    `frames="all"` asks for every frame the family's evaluation uses (CAV-MAE: the ten extracted frames, whose
    predictions are averaged as in the paper), `"middle"` / `None` for the family's single evaluation frame, an
    int for one given frame. Families whose processors always return a fixed frame sequence (LAVisH, DG-SCT
    segments) ignore the option.
    """
    options = getattr(processor, "call_options", ())
    if "frame_index" not in options:
        return {}
    if frames in (None, "middle"):
        return {"frame_index": None}
    if frames == "all" or isinstance(frames, int):
        return {"frame_index": frames}
    raise ValueError(f"frames must be 'all', 'middle' or a frame number, got {frames!r}")


class PreparedClip(dict):
    """Model inputs of one clip (`input_values`, `pixel_values`, batch dimension 1) plus the clip's `duration`
    (seconds; only when asked for, `None` when unknown)."""


class AudioVisualInputMixin:
    """Turns one pipeline input into a :class:`PreparedClip` with the family processor (`self.processor`)."""

    def _family_processor(self):
        if self.processor is None:
            raise ValueError(
                f"{type(self).__name__} needs the model's processor; pass processor= or a model folder that has one"
            )
        return self.processor

    def _model_modalities(self) -> tuple[str, ...]:
        modalities = getattr(self.model, "input_modalities", ("audio", "visual"))
        if isinstance(modalities, str):
            modalities = (modalities,)
        # "video" / "image" are older names of the visual input
        modalities = tuple("visual" if name in ("video", "image") else name for name in modalities)
        # a head that takes one modality's input only (VATT's video / audio classifiers share their family's
        # `input_modalities`) is fed only that one
        import inspect

        parameters = inspect.signature(self.model.forward).parameters
        if not any(p.kind == p.VAR_POSITIONAL for p in parameters.values()):
            taken = {"audio": "input_values" in parameters, "visual": "pixel_values" in parameters}
            if any(taken.values()):
                modalities = tuple(name for name in modalities if taken.get(name, True))
        return modalities

    def _processor_modalities(self, modality: str | None) -> str:
        """The processor's `modalities=` for the pipeline's `modality` (restricted to what the model takes)."""
        modality = resolve_modality(modality)
        supported = self._model_modalities()
        if modality in ("audio", "visual") and modality not in supported:
            raise ValueError(f"{type(self.model).__name__} does not take {modality} input (it takes {supported})")
        if modality is not None:
            return modality
        if "audio" in supported and "visual" in supported:
            return "available"
        return "audio" if "audio" in supported else "visual"

    def _process(self, label: str, **call) -> dict[str, torch.Tensor]:
        try:
            return dict(self._family_processor()(return_tensors="pt", **call))
        except HfAvError:
            raise
        except ValueError as error:
            message = str(error)
            raise ValueError(message if label in message else f"{label}: {message}") from error

    def prepare_clip(
        self, inputs, modality: str | None = None, frames=None, with_duration: bool = False,
        processor_options: dict[str, Any] | None = None,
    ) -> PreparedClip:
        """One clip -> :class:`PreparedClip`. Raises `ValueError` (a :class:`~hf_av.errors.HfAvError` for media
        problems) with a message naming the input. `processor_options`: further arguments of every processor call
        made for the clip (e.g. DG-SCT AVVP's `clip_features`, AVQA's question `text`, AVS's `return_image_sizes`)."""
        processor = self._family_processor()
        modalities = self._processor_modalities(modality)
        options = {**resolve_frames_option(processor, frames), **(processor_options or {})}
        label = "<dict input>" if isinstance(inputs, dict) else describe_source(inputs)
        duration = None

        if _is_media_source(inputs):
            if isinstance(inputs, (str, os.PathLike)) and not os.path.exists(inputs):
                raise MediaDecodingError(f"{inputs}: no such file")
            clip = PreparedClip(self._process(label, videos=inputs, modalities=modalities, **options))
            if with_duration:
                duration = _media_duration(inputs)
        elif isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(_AUDIO_KEYS) - set(_FRAME_KEYS) - {"sampling_rate"})
            if unknown:
                raise ValueError(f"unknown input key(s) {unknown}; use 'audio', 'sampling_rate' and 'frames'")
            audio = next((inputs[k] for k in _AUDIO_KEYS if inputs.get(k) is not None), None)
            frames_value = next((inputs[k] for k in _FRAME_KEYS if inputs.get(k) is not None), None)
            want_audio = modalities in ("audio-visual", "audio", "available")
            want_visual = modalities in ("audio-visual", "visual", "available")
            if modalities in ("audio-visual", "audio") and audio is None:
                raise MediaDecodingError(f"{label}: no audio given (modality={modalities!r} needs it)")
            if modalities in ("audio-visual", "visual") and frames_value is None:
                raise MediaDecodingError(f"{label}: no video frames given (modality={modalities!r} needs them)")
            clip = PreparedClip()
            if want_audio and audio is not None:
                if _is_media_source(audio):
                    clip.update(self._process(describe_source(audio), videos=audio, modalities="audio",
                                              **(processor_options or {})))
                    duration = _media_duration(audio) if with_duration else None
                else:
                    sampling_rate = inputs.get("sampling_rate")
                    if sampling_rate is None:
                        raise ValueError(f"{label}: audio arrays need a 'sampling_rate'")
                    clip.update(self._process(label, audio=[np.asarray(audio, dtype=np.float32)],
                                              sampling_rate=sampling_rate, modalities="audio",
                                              **(processor_options or {})))
                    duration = np.asarray(audio).shape[-1] / float(sampling_rate)
            if want_visual and frames_value is not None:
                if _is_media_source(frames_value):
                    clip.update(self._process(describe_source(frames_value), videos=frames_value,
                                              modalities="visual", **options))
                    if with_duration and duration is None:
                        duration = _media_duration(frames_value)
                else:
                    frame_array = np.asarray(frames_value)
                    if frame_array.ndim not in (3, 4) or frame_array.shape[0] == 0:
                        raise ValueError(
                            f"{label}: frames must be [H, W, 3] or [T, H, W, 3], got shape {tuple(frame_array.shape)}"
                        )
                    # [H, W, 3] is one image; [T, H, W, 3] one clip of T frames
                    images = frame_array if frame_array.ndim == 3 else [frame_array]
                    clip.update(self._process(label, images=images, modalities="visual", **(processor_options or {})))
            if not clip:
                raise MediaDecodingError(f"{label}: neither audio nor video frames given")
        else:
            raise ValueError(
                f"expected a file path, bytes or a dict with 'audio'/'frames', got {type(inputs).__name__}"
            )
        if with_duration:
            clip["duration"] = float(duration) if duration else None
        return clip

    def _model_dtype_cast(self, tensors: dict[str, Any]) -> dict[str, Any]:
        dtype = getattr(self.model, "dtype", None)
        return {
            key: value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() and dtype else value
            for key, value in tensors.items()
        }

    def _ensure_batchable(self) -> None:
        # Transformers' batch collation needs a feature extractor (padding value); ours are always present for the
        # audio families, but an image-only processor also works (pixel values are concatenated, never padded).
        if self.feature_extractor is None and self.processor is not None:
            self.feature_extractor = getattr(self.processor, "feature_extractor", None)
        if self.image_processor is None and self.processor is not None:
            self.image_processor = getattr(self.processor, "image_processor", None)


def _media_duration(source) -> float | None:
    """Container duration (metadata only; the tensors come from the processor)."""
    from ..media import probe_media

    if hasattr(source, "seek"):
        source.seek(0)
    try:
        return probe_media(source).duration
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
