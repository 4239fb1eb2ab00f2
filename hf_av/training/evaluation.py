"""Evaluation loops that Trainer.evaluate does not cover: embedding retrieval over a stream."""

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
    must provide `get_audio_features` / `get_visual_features` returning `pooler_output`.
    """
    encoder = model.base_model if hasattr(model, "base_model") else model
    for name in ("get_audio_features", "get_visual_features"):
        if not hasattr(encoder, name):
            raise ValueError(f"{type(encoder).__name__} has no {name}(); retrieval needs a joint-embedding model")
    was_training = encoder.training
    encoder.eval()
    device = device or next(encoder.parameters()).device
    audio, visual, labels = [], [], []
    try:
        for batch in batches:
            audio.append(encoder.get_audio_features(batch["input_values"].to(device)).pooler_output.float().cpu())
            visual.append(encoder.get_visual_features(batch["pixel_values"].to(device)).pooler_output.float().cpu())
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
