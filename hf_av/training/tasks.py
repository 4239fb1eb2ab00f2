"""Training tasks: what a task needs from a model family (model class, processor, collator, metrics).

A new family plugs in by registering its head with the task's Auto class (`hf_av.registration`) and, when
it is trained from scratch, a processor factory in `PROCESSOR_FACTORIES`; the entry points stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TaskSpec:
    """What one training task is.

    Args:
        name: task name used on the command line.
        auto_class: dotted path of the Auto class whose mapping gives the family's head for this task.
        label_mode: `None` for self-supervised tasks, else the label kind the stream must yield
            (`"single"`/`"multi"` are inferred from the data when `"clip"`; `"segments"` per second).
        metric: what evaluation reports (`"retrieval"`, `"classification"`, `"segments"`).
    """

    name: str
    auto_class: str
    label_mode: str | None
    metric: str


TASKS: dict[str, TaskSpec] = {
    "pretraining": TaskSpec("pretraining", "transformers.AutoModelForPreTraining", None, "retrieval"),
    "classification": TaskSpec(
        "classification", "hf_av.auto.AutoModelForAudioVisualClassification", "clip", "classification"
    ),
    "event-localization": TaskSpec(
        "event-localization", "hf_av.auto.AutoModelForAudioVisualEventLocalization", "segments", "segments"
    ),
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name]


def auto_class_for(task: TaskSpec):
    module_name, class_name = task.auto_class.rsplit(".", 1)
    import importlib

    return getattr(importlib.import_module(module_name), class_name)


def model_class_for(task: TaskSpec, config):
    """The head class a family registered for `task` (error names the family and the task)."""
    auto_class = auto_class_for(task)
    try:
        return auto_class._model_mapping[type(config)]
    except KeyError:
        raise ValueError(
            f"model type {config.model_type!r} has no head for task {task.name!r} "
            f"(nothing registered with {auto_class.__name__})"
        ) from None


def _cav_mae_processor(config):
    """A CAV-MAE processor whose fbank length, mel bins and frame size match `config`."""
    from hf_av.processing.cav_mae import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor

    size = config.image_size
    return CavMaeProcessor(
        feature_extractor=CavMaeFeatureExtractor(target_length=config.audio_length, num_mel_bins=config.num_mel_bins),
        image_processor=CavMaeImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
    )


# model_type -> processor matching a config built from scratch (a saved model folder carries its own).
PROCESSOR_FACTORIES: dict[str, Callable] = {"cav-mae": _cav_mae_processor}


def processor_for_config(config):
    factory = PROCESSOR_FACTORIES.get(config.model_type)
    if factory is None:
        raise ValueError(
            f"no default processor for model type {config.model_type!r}; pass a model folder that holds one"
        )
    return factory(config)


def classification_metrics(problem_type: str | None) -> Callable:
    """`compute_metrics` for Trainer: accuracy (single-label) or AudioSet-style mAP (multi-label)."""
    from hf_av.metrics import accuracy, mean_average_precision

    def compute(eval_prediction) -> dict:
        logits = eval_prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        labels = eval_prediction.label_ids
        if problem_type == "multi_label_classification":
            return {"mAP": float(mean_average_precision(logits, labels))}
        return {"accuracy": float(accuracy(np.asarray(logits).argmax(-1), labels))}

    return compute
