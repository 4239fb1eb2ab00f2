"""Collators: stream examples -> model-ready batches (stack equal shapes, pad variable-length ones)."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

__all__ = ["AudioVisualCollator", "collator_for_model"]

_MODEL_KEYS = {
    "cav-mae": ("input_values", "pixel_values", "labels"),
    "vatt": ("input_values", "pixel_values", "input_ids", "attention_mask", "labels"),
    "lavish": ("input_values", "pixel_values", "labels"),
    "dg-sct": ("input_values", "pixel_values", "labels"),
}


def _as_tensor(value):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, bool):
        return torch.tensor(value)
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.long)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32)
    if isinstance(value, (list, tuple)):
        return torch.as_tensor(value)
    return None


def _ones_mask(t):
    import torch

    return torch.ones(t.shape[:2], dtype=torch.long)


class AudioVisualCollator:
    """Collates a list of stream examples into a dict of tensors.

    * Equal shapes are stacked (``input_values [B, T, F]``, ``pixel_values [B, 3, H, W]`` or
      ``[B, T, 3, H, W]``, ``labels [B]`` / ``[B, C]`` multi-hot / ``[B, S]`` segments).
    * Different shapes (variable-length audio, a varying number of frames or segments, token ids) are
      right-padded in every dimension to the batch maximum (rounded up to ``pad_to_multiple_of`` on the
      first dimension, labels excepted): ``input_ids`` with ``pad_token_id``, ``attention_mask`` with 0, ``labels`` with
      ``label_pad_value`` (-100, ignored by cross-entropy and by ``ave_segment_accuracy``), all else with 0.
      For a padded key other than ``input_ids``/``labels``, ``return_padding_masks=True`` adds
      ``<key>_padding_mask`` (1 = real, 0 = padding, over the first dimension).
    * ``input_ids`` without ``attention_mask`` gets one built from the lengths.
    * ``keys``: the keys to collate when present (absent ones are skipped); default every tensor-like key.
      Keys outside ``keys`` and non-numeric values such as ``sample_id`` are
      dropped, since Trainer passes every batch key to ``forward``; list them in ``passthrough`` to keep them
      as Python lists.
    * ``one_hot_labels``: a class count; class-index ``labels [B]`` become float one-hot rows ``[B, C]`` (single-label
      data training a sigmoid head that is multi-label by construction, e.g. VATT's audio classifier). Labels that
      are already ``[B, C]`` are left alone.
    """

    def __init__(self, keys: Optional[Sequence[str]] = None, pad_token_id: int = 0, label_pad_value: int = -100,
                 pad_to_multiple_of: Optional[int] = None, return_padding_masks: bool = False,
                 passthrough: Sequence[str] = (), one_hot_labels: Optional[int] = None):
        self.keys = tuple(keys) if keys is not None else None
        self.pad_token_id = pad_token_id
        self.label_pad_value = label_pad_value
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_padding_masks = return_padding_masks
        self.passthrough = tuple(passthrough)
        if one_hot_labels is not None and int(one_hot_labels) < 1:
            raise ValueError(f"one_hot_labels must be a class count >= 1, got {one_hot_labels}")
        self.one_hot_labels = int(one_hot_labels) if one_hot_labels is not None else None

    def _pad_value(self, key: str):
        if key == "input_ids":
            return self.pad_token_id
        if key == "labels":
            return self.label_pad_value
        return 0

    def _stack(self, key: str, values: List):
        import torch

        if all(v.shape == values[0].shape for v in values):
            return torch.stack(values), None
        ndim = values[0].dim()
        if any(v.dim() != ndim for v in values):
            raise ValueError(f"cannot collate {key!r}: tensors of different ranks {[tuple(v.shape) for v in values]}")
        target = [max(v.shape[d] for v in values) for d in range(ndim)]
        if self.pad_to_multiple_of and ndim and key != "labels":
            m = self.pad_to_multiple_of
            target[0] = -(-target[0] // m) * m
        out = values[0].new_full([len(values)] + target, self._pad_value(key))
        mask = torch.zeros(len(values), target[0], dtype=torch.long) if ndim else None
        for i, v in enumerate(values):
            out[(i,) + tuple(slice(0, s) for s in v.shape)] = v
            if mask is not None:
                mask[i, : v.shape[0]] = 1
        return out, mask

    def _one_hot(self, labels):
        import torch

        if labels.is_floating_point() or labels.min() < 0 or labels.max() >= self.one_hot_labels:
            raise ValueError(
                f"cannot one-hot labels {labels.tolist()}: class ids in 0..{self.one_hot_labels - 1} expected"
            )
        return torch.nn.functional.one_hot(labels.long(), self.one_hot_labels).float()

    def __call__(self, examples: Sequence[Mapping]) -> Dict:
        if not examples:
            raise ValueError("empty batch")
        keys = self.keys if self.keys is not None else list(examples[0].keys())
        batch: Dict = {}
        for key in keys:
            if key in self.passthrough:
                continue
            present = [ex.get(key) for ex in examples]
            if all(v is None for v in present):
                continue
            if any(v is None for v in present):
                raise ValueError(f"{key!r} is missing from some examples of the batch")
            tensors = [_as_tensor(v) for v in present]
            if any(t is None for t in tensors):
                if self.keys is not None:
                    raise ValueError(f"cannot collate {key!r}: values of type {type(present[0]).__name__}")
                continue  # e.g. sample_id strings
            stacked, mask = self._stack(key, tensors)
            if key == "labels" and self.one_hot_labels is not None and stacked.dim() == 1:
                stacked = self._one_hot(stacked)
            batch[key] = stacked
            if key == "input_ids" and "attention_mask" not in examples[0]:
                batch["attention_mask"] = mask if mask is not None else _ones_mask(stacked)
            elif mask is not None and self.return_padding_masks and key not in ("labels", "attention_mask"):
                batch[f"{key}_padding_mask"] = mask
        for key in self.passthrough:
            if key in examples[0]:
                batch[key] = [ex.get(key) for ex in examples]
        return batch


def collator_for_model(model_type: str, **kwargs) -> AudioVisualCollator:
    """The collator for a family's inputs (``model_type`` of its config, or a config object).

    ``cav-mae``: input_values, pixel_values, labels. ``vatt``: + input_ids, attention_mask (text padded with
    ``pad_token_id``). ``lavish`` / ``dg-sct``: segment ``labels [B, S]`` padded with -100.
    """
    model_type = getattr(model_type, "model_type", model_type)
    if model_type not in _MODEL_KEYS:
        raise ValueError(f"no collator for model_type {model_type!r}; known: {sorted(_MODEL_KEYS)}")
    return AudioVisualCollator(keys=_MODEL_KEYS[model_type], **kwargs)
