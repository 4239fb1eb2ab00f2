"""Model-agnostic access to joint-space clip embeddings (used by retrieval and feature extraction).

A model qualifies when its base model (`model.base_model`) has `get_audio_features(input_values)` and
`get_visual_features(pixel_values)` (or `get_video_features`, VATT style), each returning an output whose
`pooler_output` is the clip embedding (CAV-MAE: mean-pooled, L2-normalised tokens) and `last_hidden_state` the
tokens. Text (`get_text_features(input_ids, attention_mask)`) is used when present.
"""

from __future__ import annotations

import torch

__all__ = ["base_model_of", "encode_modalities", "supported_embedding_modalities", "visual_embedding_spaces"]

_VISUAL_METHODS = ("get_visual_features", "get_video_features")


def base_model_of(model):
    """The bare encoder inside a head model (`model.<base_model_prefix>`), or the model itself."""
    return getattr(model, "base_model", model)


def _visual_method(base):
    for name in _VISUAL_METHODS:
        if hasattr(base, name):
            return getattr(base, name)
    return None


def supported_embedding_modalities(model) -> tuple[str, ...]:
    base = base_model_of(model)
    modalities = []
    if hasattr(base, "get_audio_features"):
        modalities.append("audio")
    if _visual_method(base) is not None:
        modalities.append("visual")
    if hasattr(base, "get_text_features"):
        modalities.append("text")
    return tuple(modalities)


def _first(output, name: str, index: int):
    value = getattr(output, name, None) if not isinstance(output, tuple) else None
    if value is None and isinstance(output, (tuple, list)):
        value = output[index]
    return value


def visual_embedding_spaces(model) -> tuple[str, ...]:
    """The joint spaces the visual embedding can be asked for (VATT: `("audio", "text")`: its video-audio and
    video-text spaces); `()` for a model with one joint space."""
    import inspect

    method = _visual_method(base_model_of(model))
    if method is None or "space" not in inspect.signature(method).parameters:
        return ()
    return ("audio", "text") if hasattr(base_model_of(model), "get_text_features") else ("audio",)


@torch.no_grad()
def encode_modalities(model, inputs: dict, return_tokens: bool = False,
                      visual_space: str | None = None) -> dict[str, torch.Tensor]:
    """Embeddings of whatever modalities `inputs` holds: `audio_embeds` `[B, D]`, `visual_embeds` `[B, D]`,
    `text_embeds`; with `return_tokens` also `audio_tokens` / `visual_tokens` (the last hidden states).

    `visual_space`: for models with several joint spaces (VATT), the space of `visual_embeds`: `"audio"` (the
    video-audio space, the default) or `"text"` (the video-text space, to compare with `text_embeds`)."""
    base = base_model_of(model)
    results: dict[str, torch.Tensor] = {}
    if inputs.get("input_values") is not None:
        if not hasattr(base, "get_audio_features"):
            raise ValueError(f"{type(model).__name__} has no audio embedding (get_audio_features)")
        out = base.get_audio_features(inputs["input_values"], return_dict=True)
        results["audio_embeds"] = _first(out, "pooler_output", 1)
        if return_tokens:
            results["audio_tokens"] = _first(out, "last_hidden_state", 0)
    if inputs.get("pixel_values") is not None:
        method = _visual_method(base)
        if method is None:
            raise ValueError(f"{type(model).__name__} has no visual embedding (get_visual_features)")
        space = {"space": visual_space} if visual_space is not None else {}
        if space and visual_space not in visual_embedding_spaces(model):
            raise ValueError(
                f"{type(model).__name__} has no visual embedding in the {visual_space} space "
                f"(spaces: {visual_embedding_spaces(model) or 'one joint space'})"
            )
        out = method(inputs["pixel_values"], return_dict=True, **space)
        results["visual_embeds"] = _first(out, "pooler_output", 1)
        if return_tokens:
            results["visual_tokens"] = _first(out, "last_hidden_state", 0)
    if inputs.get("input_ids") is not None:
        if not hasattr(base, "get_text_features"):
            raise ValueError(f"{type(model).__name__} has no text embedding (get_text_features)")
        kwargs = {"attention_mask": inputs["attention_mask"]} if inputs.get("attention_mask") is not None else {}
        out = base.get_text_features(inputs["input_ids"], **kwargs)
        results["text_embeds"] = out if isinstance(out, torch.Tensor) else _first(out, "pooler_output", 1)
    return results
