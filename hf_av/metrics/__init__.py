"""Metrics for audio-visual models, as plain numpy functions and as `evaluate` modules shipped in the package.

``hf_av.metrics.load(name)`` calls ``evaluate.load`` on the module folder inside this package, so it works
offline (no Hub fetch). Available names: ``accuracy``, ``mean_average_precision`` (alias ``map``),
``retrieval_recall``, ``ave_segment_accuracy``.

>>> import hf_av.metrics as M
>>> M.load("retrieval_recall").compute(predictions=a_emb, references=v_emb, labels=digits)   # doctest: +SKIP
>>> M.retrieval_recall(audio_embeddings=a_emb, visual_embeddings=v_emb, labels=digits)        # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

from .functional import (
    accuracy,
    average_precision,
    ave_segment_accuracy,
    avvp_segment_f1,
    mask_f_score,
    mask_miou,
    mean_average_precision,
    retrieval_recall,
)

_HERE = Path(__file__).resolve().parent
_ALIASES = {"map": "mean_average_precision", "mAP": "mean_average_precision", "recall": "retrieval_recall"}

__all__ = [
    "load",
    "list_metrics",
    "metric_path",
    "accuracy",
    "average_precision",
    "mean_average_precision",
    "retrieval_recall",
    "ave_segment_accuracy",
    "avvp_segment_f1",
    "mask_f_score",
    "mask_miou",
]


def list_metrics() -> List[str]:
    """Names of the evaluate modules shipped in hf_av."""
    return sorted(p.name for p in _HERE.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())


def metric_path(name: str) -> str:
    """Filesystem path of the module folder of metric `name` (what ``evaluate.load`` is given)."""
    name = _ALIASES.get(name, name)
    path = _HERE / name
    if not (path / f"{name}.py").is_file():
        raise ValueError(f"Unknown hf_av metric {name!r}; available: {', '.join(list_metrics())}")
    return str(path)


def load(name: str, **kwargs):
    """``evaluate.load`` of an hf_av metric, from the installed package (offline).

    Extra keyword arguments (``experiment_id``, ``num_process``, ``process_id``, ``keep_in_memory`` ...) go to
    ``evaluate.load``.
    """
    import evaluate

    kwargs.setdefault("keep_in_memory", True)
    # A local module path never needs the Hub; make sure evaluate does not try to reach it.
    kwargs.setdefault("download_mode", "reuse_cache_if_exists")
    return evaluate.load(metric_path(name), **kwargs)
