"""Shared input handling of the hf_av pipelines: one media item (file, bytes or arrays) -> model-ready tensors.

Every audio-visual pipeline accepts the same kinds of input for one clip:

* a path (`str` / `os.PathLike`) or `bytes` of a media file: decoded once with `hf_av.media.decode_media`, the way
  the family's processor decodes files (same frame selection, audio rate and channel policy);
* a dict of arrays or files: `{"audio": waveform | path | bytes, "sampling_rate": int, "frames": array | path}`
  (`"raw"` / `"array"` are accepted for `"audio"` like Transformers' audio pipelines, `"video"` for `"frames"`).
  A waveform is `[samples]` or `[channels, samples]`; frames are `[H, W, 3]` (one frame) or `[T, H, W, 3]`.

`modality` chooses what is fed to the model: `"audio-visual"`, `"audio"`, `"video"` or `None` (= whatever the
input has). A modality the input lacks is an error naming the input.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..errors import HfAvError, MediaDecodingError

__all__ = ["MODALITIES", "AudioVisualInputMixin", "PreparedClip", "resolve_frames_option"]

MODALITIES = ("audio-visual", "audio", "video")
_AUDIO_KEYS = ("audio", "raw", "array")
_FRAME_KEYS = ("frames", "video", "images")


def _is_media_source(value) -> bool:
    return isinstance(value, (str, os.PathLike, bytes, bytearray)) or hasattr(value, "read")


def _describe(source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if isinstance(source, dict):
        return "<dict input>"
    return str(source)


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
    """Model inputs of one clip (`input_values`, `pixel_values`, batch dimension 1) plus the clip's `duration`."""


class AudioVisualInputMixin:
    """Turns one pipeline input into a :class:`PreparedClip` with the family processor (`self.processor`)."""

    def _sub_processors(self):
        processor = self.processor
        if processor is None:
            raise ValueError(
                f"{type(self).__name__} needs the model's processor; pass processor= or a model folder that has one"
            )
        feature_extractor = getattr(processor, "feature_extractor", None)
        image_processor = getattr(processor, "image_processor", None)
        return processor, feature_extractor, image_processor

    def _model_modalities(self) -> tuple[str, ...]:
        modalities = getattr(self.model, "input_modalities", ("audio", "video"))
        if isinstance(modalities, str):
            modalities = (modalities,)
        return tuple(modalities)

    def _wanted(self, modality: str | None) -> tuple[bool, bool]:
        if modality is not None and modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES} or None, got {modality!r}")
        supported = self._model_modalities()
        want_audio = modality in (None, "audio-visual", "audio") and "audio" in supported
        want_video = modality in (None, "audio-visual", "video") and ("video" in supported or "image" in supported)
        if modality == "audio" and "audio" not in supported or modality == "video" and not want_video:
            raise ValueError(f"{type(self.model).__name__} does not take {modality} input (it takes {supported})")
        return want_audio, want_video

    # Audio --------------------------------------------------------------------------------------------------------
    def _audio_features(self, waveform, sampling_rate) -> torch.Tensor:
        _, feature_extractor, _ = self._sub_processors()
        if feature_extractor is None:
            raise ValueError("the processor has no feature extractor for audio input")
        if sampling_rate is None:
            raise ValueError("audio arrays need a 'sampling_rate'")
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim == 1:
            waveform = waveform[None]
        if waveform.ndim != 2 or waveform.shape[-1] == 0:
            raise ValueError(f"audio must be [samples] or [channels, samples], got shape {tuple(waveform.shape)}")
        features = feature_extractor([waveform], sampling_rate=int(sampling_rate), return_tensors="pt")
        return features["input_values"]

    # Frames -------------------------------------------------------------------------------------------------------
    def _pixel_values(self, frames) -> torch.Tensor:
        processor, _, image_processor = self._sub_processors()
        if image_processor is None:
            raise ValueError("the processor has no image processor for frame input")
        frames = torch.as_tensor(np.ascontiguousarray(np.asarray(frames)))
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise ValueError(f"frames must be [H, W, 3] or [T, H, W, 3], got shape {tuple(frames.shape)}")
        pixel_values = image_processor.preprocess_frames(frames)[None]  # one clip of T frames
        if getattr(processor, "single_frame_per_clip", False) and pixel_values.shape[1] == 1:
            pixel_values = pixel_values[:, 0]
        return pixel_values

    # Files --------------------------------------------------------------------------------------------------------
    def _decode(self, source, want_audio: bool, want_video: bool, frames_option: dict, name: str | None = None):
        from ..media import decode_media

        processor, _, _ = self._sub_processors()
        kwargs = processor._media_decode_kwargs(**frames_option) if hasattr(processor, "_media_decode_kwargs") else {}
        kwargs = dict(kwargs)
        kwargs.update(audio=want_audio, video=want_video, require_audio=False, require_video=False)
        if not want_video:
            kwargs.pop("frame_indices", None)
            kwargs.pop("frame_rate", None)
            kwargs.pop("frame_rate_mode", None)
        if name is not None:
            kwargs["name"] = name
        return decode_media(source, **kwargs)

    def prepare_clip(self, inputs, modality: str | None = None, frames=None) -> PreparedClip:
        """One clip -> :class:`PreparedClip`. Raises `ValueError` (a :class:`~hf_av.errors.HfAvError` for media
        problems) with a message naming the input."""
        processor, _, _ = self._sub_processors()
        want_audio, want_video = self._wanted(modality)
        frames_option = resolve_frames_option(processor, frames)
        label = _describe(inputs)
        waveform = sampling_rate = frame_array = None
        duration = None

        if _is_media_source(inputs):
            if isinstance(inputs, (str, os.PathLike)) and not os.path.exists(inputs):
                raise MediaDecodingError(f"{inputs}: no such file")
            decoded = self._decode(inputs, want_audio, want_video, frames_option)
            waveform, sampling_rate, frame_array = decoded.audio, decoded.sampling_rate, decoded.frames
            duration = decoded.duration
        elif isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(_AUDIO_KEYS) - set(_FRAME_KEYS) - {"sampling_rate"})
            if unknown:
                raise ValueError(f"unknown input key(s) {unknown}; use 'audio', 'sampling_rate' and 'frames'")
            audio_value = next((inputs[k] for k in _AUDIO_KEYS if inputs.get(k) is not None), None)
            frame_value = next((inputs[k] for k in _FRAME_KEYS if inputs.get(k) is not None), None)
            sampling_rate = inputs.get("sampling_rate")
            if audio_value is not None and want_audio:
                if _is_media_source(audio_value):
                    decoded = self._decode(audio_value, True, False, frames_option)
                    waveform, sampling_rate = decoded.audio, decoded.sampling_rate
                    duration = decoded.duration
                else:
                    waveform = audio_value
                    if sampling_rate is not None:
                        duration = np.asarray(audio_value).shape[-1] / float(sampling_rate)
            if frame_value is not None and want_video:
                if _is_media_source(frame_value):
                    decoded = self._decode(frame_value, False, True, frames_option)
                    frame_array = decoded.frames
                    duration = duration or decoded.duration
                else:
                    frame_array = frame_value
        else:
            raise ValueError(
                f"expected a file path, bytes or a dict with 'audio'/'frames', got {type(inputs).__name__}"
            )

        has_audio = want_audio and waveform is not None and np.asarray(waveform).size > 0
        has_video = want_video and frame_array is not None and len(frame_array) > 0
        if modality in ("audio-visual", "audio") and not has_audio:
            raise MediaDecodingError(f"{label}: no audio found (modality={modality!r} needs it)")
        if modality in ("audio-visual", "video") and not has_video:
            raise MediaDecodingError(f"{label}: no video frames found (modality={modality!r} needs them)")
        if not has_audio and not has_video:
            raise MediaDecodingError(f"{label}: neither audio nor video frames could be read")
        clip = PreparedClip()
        try:
            if has_audio:
                clip["input_values"] = self._audio_features(waveform, sampling_rate)
            if has_video:
                clip["pixel_values"] = self._pixel_values(frame_array)
        except HfAvError:
            raise
        except ValueError as error:
            raise ValueError(f"{label}: {error}") from error
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
