"""Numpy implementations of the metrics hf_av reports.

Every function takes array-likes (lists, numpy arrays, or CPU torch tensors) and returns plain Python
floats (or dicts of them). The `evaluate` modules in the sub-folders of this package call these
functions, so `hf_av.metrics.load(name).compute(...)` and the plain functions give identical numbers.

Conventions
-----------
* ``accuracy``: fraction of exact matches; 2-D predictions are treated as logits/scores and arg-maxed.
* ``mean_average_precision``: AudioSet-style mAP = unweighted mean over classes of the average precision
  (mean of the precision at the rank of every positive; a block of tied scores counts as one threshold,
  as in scikit-learn's ``average_precision_score``). Classes with no positive reference are skipped (their AP is undefined) and reported.
* ``retrieval_recall``: recall@K in both directions (audio->visual and visual->audio) from a pair of
  embedding matrices or from a similarity matrix; instance-level (the paired item must be in the top K)
  or class-level (an item with the same label must be in the top K).
* ``ave_segment_accuracy``: per-second accuracy over all segments of all videos (AVE protocol; the
  background class counts as a class like any other).
* ``avvp_segment_f1``: LLP segment-level F-scores of audio-visual video parsing (audio, visual, audio-visual,
  their average, and the event F-score), per video then averaged over videos.
* ``mask_miou`` / ``mask_f_score``: AVSBench's mean IoU and max-over-thresholds F-score (beta^2 = 0.3) of mask
  logits against binary masks.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

__all__ = [
    "accuracy",
    "average_precision",
    "mean_average_precision",
    "retrieval_recall",
    "ave_segment_accuracy",
    "avvp_segment_f1",
    "mask_f_score",
    "mask_miou",
]


def _to_numpy(x, dtype=None) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def accuracy(predictions, references, sample_weight=None) -> float:
    """Top-1 accuracy.

    Args:
        predictions: ``[N]`` class ids, or ``[N, C]`` scores/logits (arg-maxed over the last axis).
        references: ``[N]`` class ids.
        sample_weight: optional ``[N]`` weights.
    """
    preds = _to_numpy(predictions)
    refs = _to_numpy(references).astype(np.int64).reshape(-1)
    if preds.ndim == 2:
        preds = preds.argmax(axis=-1)
    preds = preds.astype(np.int64).reshape(-1)
    if preds.shape != refs.shape:
        raise ValueError(f"predictions ({preds.shape[0]}) and references ({refs.shape[0]}) differ in length")
    if refs.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    correct = (preds == refs).astype(np.float64)
    if sample_weight is None:
        return float(correct.mean())
    w = _to_numpy(sample_weight, np.float64).reshape(-1)
    return float((correct * w).sum() / w.sum())


def average_precision(scores, targets) -> float:
    """Average precision of one class: mean over positives of the precision at the rank of that positive.

    Items are ranked by decreasing score. Tied scores are handled like scikit-learn's
    ``average_precision_score`` (a tie block is counted as one threshold: every positive inside the block
    gets the precision at the end of the block). Returns ``nan`` if there is no positive.
    """
    s = _to_numpy(scores, np.float64).reshape(-1)
    t = _to_numpy(targets).reshape(-1) > 0
    n_pos = int(t.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, t_sorted = s[order], t[order]
    tp_cum = np.cumsum(t_sorted)
    # index of the last element of every tie block
    block_end = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    tp_at = tp_cum[block_end].astype(np.float64)
    precision_at = tp_at / (block_end + 1)
    new_pos = np.diff(np.r_[0.0, tp_at])  # positives that enter at each threshold
    return float((new_pos * precision_at).sum() / n_pos)


def mean_average_precision(predictions, references, return_per_class: bool = False):
    """AudioSet-style mAP: unweighted mean over classes of :func:`average_precision`.

    Args:
        predictions: ``[N, C]`` scores (logits, sigmoid outputs: any monotonic score works).
        references: ``[N, C]`` multi-hot targets (0/1), or ``[N]`` class ids (turned into one-hot).
        return_per_class: also return the per-class AP list (``nan`` for skipped classes).

    Classes with no positive reference are skipped (AP undefined), as AudioSet evaluation does; their
    number is returned as ``num_skipped_classes``.
    """
    scores = _to_numpy(predictions, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"predictions must be [N, C], got shape {scores.shape}")
    refs = _to_numpy(references)
    if refs.ndim == 1:
        onehot = np.zeros_like(scores)
        onehot[np.arange(refs.size), refs.astype(np.int64)] = 1
        refs = onehot
    if refs.shape != scores.shape:
        raise ValueError(f"references shape {refs.shape} != predictions shape {scores.shape}")
    per_class = [average_precision(scores[:, c], refs[:, c]) for c in range(scores.shape[1])]
    valid = [ap for ap in per_class if not np.isnan(ap)]
    if not valid:
        raise ValueError("no class has a positive reference; mAP is undefined")
    out = {"mAP": float(np.mean(valid)), "num_skipped_classes": len(per_class) - len(valid)}
    if return_per_class:
        out["average_precision"] = per_class
    return out


def _recall_from_similarity(sim: np.ndarray, query_keys: np.ndarray, cand_keys: np.ndarray, ks) -> Dict[int, float]:
    """Recall@K: fraction of queries whose top-K candidates contain one with the same key.

    Ranks are pessimistic under ties (a candidate tied with the first hit is ranked before it).
    """
    match = query_keys[:, None] == cand_keys[None, :]
    if not match.any(axis=1).all():
        missing = int((~match.any(axis=1)).sum())
        raise ValueError(f"{missing} queries have no matching candidate; recall is undefined for them")
    # best score among the hits of each query, then the rank = number of non-hits scoring >= it
    best_hit = np.where(match, sim, -np.inf).max(axis=1)
    rank = (np.where(match, -np.inf, sim) >= best_hit[:, None]).sum(axis=1)  # 0-based rank of first hit
    return {k: float((rank < k).mean()) for k in ks}


def retrieval_recall(
    audio_embeddings=None,
    visual_embeddings=None,
    similarity=None,
    labels=None,
    visual_labels=None,
    ks: Sequence[int] = (1, 5, 10),
    normalize: bool = True,
) -> Dict[str, float]:
    """Recall@K for audio->visual and visual->audio retrieval.

    Give either ``audio_embeddings`` ``[N, D]`` and ``visual_embeddings`` ``[M, D]`` (cosine similarity when
    ``normalize`` else dot product) or ``similarity`` ``[N, M]`` (rows: audio queries, columns: visual
    items). Without labels, item ``i`` of the audio side is paired with item ``i`` of the visual side
    (``N == M`` required). With ``labels`` (``[N]``, and ``visual_labels`` ``[M]`` if the sides differ),
    retrieval is class-level: a retrieved item counts as a hit when its label equals the query's (this is
    what AV-Digits reports; chance R@1 = 1/num_classes for balanced classes).

    Returns ``{"audio_to_visual_recall@1": ..., ..., "visual_to_audio_recall@10": ...}``.
    """
    if similarity is None:
        if audio_embeddings is None or visual_embeddings is None:
            raise ValueError("give audio_embeddings and visual_embeddings, or similarity")
        a = _to_numpy(audio_embeddings, np.float64)
        v = _to_numpy(visual_embeddings, np.float64)
        if normalize:
            a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        sim = a @ v.T
    else:
        sim = _to_numpy(similarity, np.float64)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be 2-D, got shape {sim.shape}")
    n, m = sim.shape
    if labels is None:
        if n != m:
            raise ValueError(f"instance-level retrieval needs paired sides (N == M), got {n} x {m}; pass labels")
        qa = np.arange(n)
        qv = np.arange(m)
    else:
        qa = _to_numpy(labels).reshape(-1)
        qv = qa if visual_labels is None else _to_numpy(visual_labels).reshape(-1)
        if qa.size != n or qv.size != m:
            raise ValueError(f"labels sizes ({qa.size}, {qv.size}) do not match similarity shape {sim.shape}")
    ks = [int(k) for k in ks]
    out = {}
    for k, r in _recall_from_similarity(sim, qa, qv, ks).items():
        out[f"audio_to_visual_recall@{k}"] = r
    for k, r in _recall_from_similarity(sim.T, qv, qa, ks).items():
        out[f"visual_to_audio_recall@{k}"] = r
    return out


def ave_segment_accuracy(predictions, references, ignore_index: Optional[int] = -100) -> float:
    """AVE per-second (segment) accuracy over all segments of all videos.

    Args:
        predictions: ``[N, T]`` predicted class ids per segment, or ``[N, T, C]`` scores (arg-maxed).
            The background class is one of the C classes (AVE: index 28 of 29).
        references: ``[N, T]`` class ids per segment (background included).
        ignore_index: segments whose reference equals this value (padding) are not counted.
    """
    preds = _to_numpy(predictions)
    refs = _to_numpy(references).astype(np.int64)
    if preds.ndim == refs.ndim + 1:
        preds = preds.argmax(axis=-1)
    preds = preds.astype(np.int64)
    if preds.shape != refs.shape:
        raise ValueError(f"predictions shape {preds.shape} != references shape {refs.shape}")
    keep = np.ones(refs.shape, dtype=bool) if ignore_index is None else refs != ignore_index
    if not keep.any():
        raise ValueError("no segment to score")
    return float((preds[keep] == refs[keep]).mean())


# ------------------------------------------------------------------------------------------------ DG-SCT tasks
def _f_scores_per_class(predicted: np.ndarray, reference: np.ndarray) -> list:
    """LLP's per-class F1 over the segments of one video (`[C, T]` binary arrays): 2 TP / (2 TP + FN + FP) for every
    class that is predicted or present in at least one segment; classes absent from both are left out."""
    true_positive = (predicted * reference).sum(1)
    false_negative = ((1 - predicted) * reference).sum(1)
    false_positive = (predicted * (1 - reference)).sum(1)
    return [
        2 * tp / (2 * tp + fn + fp)
        for tp, fn, fp in zip(true_positive, false_negative, false_positive)
        if tp + fp != 0 or tp + fn != 0
    ]


def avvp_segment_f1(audio_predictions, visual_predictions, audio_references, visual_references) -> Dict[str, float]:
    """Segment-level F-scores of audio-visual video parsing (the LLP protocol of Tian et al. 2020, as DG-SCT's
    `AVVP/main.py` evaluates).

    Inputs are binary `[N, T, C]` arrays (videos, 1-s segments, classes): the predicted and annotated audio and
    visual events of every segment. Per video, with `[C, T]` matrices:

    * audio F1 and visual F1 = the mean over classes (those predicted or annotated in any segment) of
      2 TP / (2 TP + FN + FP) counted over the segments; 1.0 when no class is predicted or annotated;
    * audio-visual F1: the same on `audio AND visual` of the predictions against `audio AND visual` of the
      references;
    * event F1: per class, the audio and visual counts summed, then as above.

    Every score is the mean over videos. Returns `audio`, `visual`, `audio_visual`, `type_average` (mean of the
    three) and `event_average` (the event F1), all in [0, 1].
    """
    arrays = [_to_numpy(x, np.float64) for x in (audio_predictions, visual_predictions, audio_references,
                                                   visual_references)]
    shape = arrays[0].shape
    if len(shape) != 3 or any(a.shape != shape for a in arrays):
        raise ValueError(
            "avvp_segment_f1 expects four binary [videos, segments, classes] arrays of one shape, got "
            f"{[a.shape for a in arrays]}"
        )
    if any(((a != 0) & (a != 1)).any() for a in arrays):
        raise ValueError("avvp_segment_f1 expects binary (0/1) predictions and references")
    scores = {"audio": [], "visual": [], "audio_visual": [], "event": []}

    def mean_or_one(values):
        return float(np.mean(values)) if values else 1.0  # no event predicted nor annotated: all true negatives

    for pred_a, pred_v, ref_a, ref_v in zip(*(np.swapaxes(a, 1, 2) for a in arrays)):
        scores["audio"].append(mean_or_one(_f_scores_per_class(pred_a, ref_a)))
        scores["visual"].append(mean_or_one(_f_scores_per_class(pred_v, ref_v)))
        scores["audio_visual"].append(mean_or_one(_f_scores_per_class(pred_a * pred_v, ref_a * ref_v)))
        # event: TP, FN and FP of the two modalities summed per class
        stacked_pred, stacked_ref = np.concatenate([pred_a, pred_v], 1), np.concatenate([ref_a, ref_v], 1)
        scores["event"].append(mean_or_one(_f_scores_per_class(stacked_pred, stacked_ref)))
    if not scores["audio"]:
        raise ValueError("avvp_segment_f1 needs at least one video")
    audio, visual, audio_visual = (float(np.mean(scores[k])) for k in ("audio", "visual", "audio_visual"))
    return {
        "audio": audio,
        "visual": visual,
        "audio_visual": audio_visual,
        "type_average": (audio + visual + audio_visual) / 3,
        "event_average": float(np.mean(scores["event"])),
    }


def _mask_arrays(predictions, references, name: str):
    predictions, references = _to_numpy(predictions, np.float64), _to_numpy(references, np.float64)
    if predictions.shape != references.shape or predictions.ndim < 2:
        raise ValueError(
            f"{name} expects mask logits and binary masks of one shape [..., height, width], got "
            f"{predictions.shape} and {references.shape}"
        )
    size = predictions.shape[-2:]
    return predictions.reshape(-1, *size), references.reshape(-1, *size)


def mask_miou(logits, references, threshold: float = 0.5, eps: float = 1e-7) -> float:
    """AVSBench's mean IoU (`utility.mask_iou`): per frame, IoU of `sigmoid(logits) > threshold` with the binary
    mask; a frame whose mask is empty scores the share of pixels also predicted empty. Mean over frames (every
    leading axis of the inputs is a frame axis)."""
    logits, references = _mask_arrays(logits, references, "mask_miou")
    predicted = (1.0 / (1.0 + np.exp(-logits)) > threshold).astype(np.float64)
    intersection = (predicted * references).sum((1, 2))
    union = np.maximum(predicted, references).sum((1, 2))
    empty = references.sum((1, 2)) == 0
    intersection[empty] = ((1 - predicted) * (1 - references)).sum((1, 2))[empty]
    union[empty] = references.shape[1] * references.shape[2]
    return float(np.mean(intersection / (union + eps)))


def mask_f_score(logits, references, num_thresholds: int = 255, beta2: float = 0.3) -> float:
    """AVSBench's F-score (`utility.Eval_Fmeasure`): for `num_thresholds` thresholds in [0, 1) on `sigmoid(logits)`,
    the F-beta (beta^2 = 0.3) of every frame with a non-empty mask (precision and recall over its pixels), averaged
    over those frames; the maximum over thresholds. 0.0 when no frame has an object."""
    logits, references = _mask_arrays(logits, references, "mask_f_score")
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    thresholds = np.linspace(0, 1 - 1e-10, num_thresholds)
    total, frames = np.zeros(num_thresholds), 0
    for probability, reference in zip(probabilities, references):
        if reference.mean() == 0.0:  # frames without a sounding object are left out, as the original
            continue
        predicted = probability[None] >= thresholds[:, None, None]
        true_positive = (predicted * reference).sum((1, 2))
        precision = true_positive / (predicted.sum((1, 2)) + 1e-20)
        recall = true_positive / (reference.sum() + 1e-20)
        with np.errstate(invalid="ignore", divide="ignore"):
            f_score = (1 + beta2) * precision * recall / (beta2 * precision + recall)
        total += np.nan_to_num(f_score, nan=0.0)
        frames += 1
    return float((total / frames).max()) if frames else 0.0
