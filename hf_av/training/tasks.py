"""Training tasks: what a task needs from a model family (model class, processor, collator, metrics).

A family plugs in through its row in `hf_av.families`: `tasks` names the head it trains for each task (registered
with the task's Auto class by `hf_av.registration`), `processor_for_config` the processor of a config built from
scratch. The entry points stay the same.
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
    from hf_av.families import resolve

    return resolve(task.auto_class, f"Auto class of task {task.name!r}")


def model_class_for(task: TaskSpec, config):
    """The head class the family row of `config` trains for `task` (error names the family and the task)."""
    from hf_av.families import get_family

    return get_family(config.model_type).head_for_task(task.name)


def cav_mae_processor_for_config(config):
    """A CAV-MAE processor whose fbank length, mel bins and frame size match `config`."""
    from hf_av.processing.cav_mae import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor

    size = config.image_size
    return CavMaeProcessor(
        feature_extractor=CavMaeFeatureExtractor(target_length=config.audio_length, num_mel_bins=config.num_mel_bins),
        image_processor=CavMaeImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
    )


def processor_for_config(config):
    """The processor matching a config built from scratch (a saved model folder carries its own)."""
    from hf_av.families import get_family, resolve

    family = get_family(config.model_type)
    if family.processor_for_config is None:
        raise ValueError(
            f"no default processor for model type {config.model_type!r}; pass a model folder that holds one"
        )
    return resolve(family.processor_for_config, f"{family.model_type} processor_for_config")(config)


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
