"""Evaluation loops that Trainer.evaluate does not cover: embedding retrieval and AVE segment accuracy over a stream."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch


def _batches(dataset, collator, batch_size: int, num_workers: int = 0):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, collate_fn=collator, num_workers=num_workers)


@torch.no_grad()
def compute_embeddings(model, batches: Iterable[dict], device=None) -> dict[str, np.ndarray]:
    """Pooled, L2-normalised audio and visual embeddings (and labels) of every batch.

    `model` is a family's base model or any head over it (its `base_model` gives the encoder); the base model
    must provide `get_audio_features` and `get_visual_features` (or Transformers' video name `get_video_features`,
    VATT: the video-audio space) returning `pooler_output`.
    """
    encoder = model.base_model if hasattr(model, "base_model") else model
    visual_name = "get_visual_features" if hasattr(encoder, "get_visual_features") else "get_video_features"
    for name in ("get_audio_features", visual_name):
        if not hasattr(encoder, name):
            raise ValueError(f"{type(encoder).__name__} has no {name}(); retrieval needs a joint-embedding model")
    get_visual_features = getattr(encoder, visual_name)
    was_training = encoder.training
    encoder.eval()
    device = device or next(encoder.parameters()).device
    audio, visual, labels = [], [], []
    try:
        for batch in batches:
            audio.append(encoder.get_audio_features(batch["input_values"].to(device)).pooler_output.float().cpu())
            visual.append(get_visual_features(batch["pixel_values"].to(device)).pooler_output.float().cpu())
            if "labels" in batch:
                labels.append(batch["labels"].cpu())
    finally:
        encoder.train(was_training)
    if not audio:
        raise ValueError("the evaluation stream yielded no samples")
    out = {"audio": torch.cat(audio).numpy(), "visual": torch.cat(visual).numpy()}
    if labels:
        out["labels"] = torch.cat(labels).numpy()
    return out


def evaluate_retrieval(model, dataset, collator, batch_size: int = 32, class_level: bool = True,
                       num_workers: int = 0) -> dict[str, float]:
    """Audio->visual and visual->audio recall@1/5/10 over `dataset` (class-level when labels are given)."""
    from hf_av.metrics import retrieval_recall

    embeddings = compute_embeddings(model, _batches(dataset, collator, batch_size, num_workers))
    labels = embeddings.get("labels") if class_level else None
    if labels is not None and labels.ndim > 1:  # multi-hot: match on the dominant class
        labels = labels.argmax(-1)
    return retrieval_recall(audio_embeddings=embeddings["audio"], visual_embeddings=embeddings["visual"],
                            labels=labels)


def segment_predictions(outputs, background_id: int | None = None) -> torch.Tensor:
    """Predicted class per segment `[B, T]` from an event-localisation head's outputs.

    Per-segment logits `[B, T, C]` (LAVisH): arg-max per segment. The supervised-AVE layout (DG-SCT:
    `is_event_logits [B, T]` + video-level `logits [B, C - 1]`): the video's event class where
    `sigmoid(is_event) > 0.5`, else `background_id`, as the original's accuracy.
    """
    logits = outputs.logits
    is_event = getattr(outputs, "is_event_logits", None)
    if is_event is None:
        if logits.ndim != 3:
            raise ValueError(f"expected per-segment logits [batch, segments, classes], got {tuple(logits.shape)}")
        return logits.argmax(-1)
    if background_id is None:
        raise ValueError("the is_event / event-class layout needs the background class id")
    event = logits.argmax(-1, keepdim=True).expand_as(is_event)
    return torch.where(is_event.sigmoid() > 0.5, event, torch.full_like(event, background_id))


@torch.no_grad()
def evaluate_segments(model, dataset, collator, batch_size: int = 32, num_workers: int = 0) -> dict[str, float]:
    """AVE segment accuracy (background included, padded segments ignored) of an event head over `dataset`."""
    from hf_av.metrics.functional import ave_segment_accuracy

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    background_id = getattr(model.config, "background_id", None)
    predictions, references = [], []
    try:
        for batch in _batches(dataset, collator, batch_size, num_workers):
            labels = batch.pop("labels")
            outputs = model(**{key: value.to(device) for key, value in batch.items()})
            predictions.append(segment_predictions(outputs, background_id).cpu())
            references.append(labels)
    finally:
        model.train(was_training)
    if not predictions:
        raise ValueError("the evaluation stream yielded no samples")
    accuracy = ave_segment_accuracy(torch.cat(predictions).numpy(), torch.cat(references).numpy())
    return {"segment_accuracy": float(accuracy), "num_clips": int(sum(len(p) for p in predictions))}
