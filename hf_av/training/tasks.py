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
        metric: what evaluation reports (`"retrieval"`, `"classification"`, `"segments"`, or the layout's own
            metrics).
        layout: for tasks trained on an original dataset layout instead of a manifest, the key of its reader in
            `hf_av.training.layouts.LAYOUTS` (the annotation file is `--train_manifest`).
    """

    name: str
    auto_class: str
    label_mode: str | None
    metric: str
    layout: str | None = None


TASKS: dict[str, TaskSpec] = {
    "pretraining": TaskSpec("pretraining", "transformers.AutoModelForPreTraining", None, "retrieval"),
    "classification": TaskSpec(
        "classification", "hf_av.auto.AutoModelForAudioVisualClassification", "clip", "classification"
    ),
    "event-localization": TaskSpec(
        "event-localization", "hf_av.auto.AutoModelForAudioVisualEventLocalization", "segments", "segments"
    ),
    # DG-SCT's other downstream tasks, read from the original datasets' annotation files (hf_av.data.dg_sct_tasks):
    # LLP weak labels (AVVP_train.csv), MUSIC-AVQA questions (avqa-train.json), AVSBench S4 masks (s4_meta_data.csv)
    "video-parsing": TaskSpec("video-parsing", "transformers.AutoModel", None, "layout", layout="video-parsing"),
    "question-answering": TaskSpec(
        "question-answering", "transformers.AutoModel", None, "layout", layout="question-answering"
    ),
    "segmentation": TaskSpec("segmentation", "transformers.AutoModel", None, "layout", layout="segmentation"),
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name]


def auto_class_for(task: TaskSpec):
    from hf_av.families import resolve

    return resolve(task.auto_class, f"Auto class of task {task.name!r}")


# A single-modality classification job trains the head the family registers for that modality with Transformers'
# own Auto class, when it has one (VATT: a video and an audio classifier); otherwise the task's head.
SINGLE_MODALITY_HEADS = {"audio": "AutoModelForAudioClassification", "visual": "AutoModelForVideoClassification"}


def model_class_for(task: TaskSpec, config, modalities: str = "audio-visual"):
    """The head class the family row of `config` trains for `task` (error names the family and the task).

    One rule for classification: with `modalities` "audio" or "visual", the family's model registered with
    `AutoModelForAudioClassification` / `AutoModelForVideoClassification` (VATT: `VattForAudioClassification` /
    `VattForVideoClassification`) when the row has one, else the row's classification head (CAV-MAE's
    audio-visual classifier, which runs either modality alone).
    """
    from hf_av.families import get_family

    family = get_family(config.model_type)
    head = family.head_for_task(task.name)
    if task.name == "classification" and modalities in SINGLE_MODALITY_HEADS:
        path = family.models.get(SINGLE_MODALITY_HEADS[modalities])
        if path is not None:
            head = family.model_class(path.rsplit(".", 1)[-1])
    return head


def check_head_inputs(model_class, input_keys) -> None:
    """The head must take every input the job feeds it; the error names the inputs and what to pass instead."""
    import inspect

    parameters = inspect.signature(model_class.forward).parameters
    missing = [key for key in input_keys if key not in parameters]
    if missing:
        taken = [key for key in ("input_values", "pixel_values", "input_ids") if key in parameters]
        modality = {"input_values": "audio", "pixel_values": "visual"}
        hint = " or ".join(f"--modalities {modality[key]}" for key in taken if key in modality)
        raise ValueError(
            f"{model_class.__name__} takes {taken} but the job feeds it {list(input_keys)} ({missing} not taken)"
            + (f"; pass {hint}" if hint else "")
        )


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
            return {"mAP": mean_average_precision(logits, labels)["mAP"]}  # the function returns a dict
        labels = np.asarray(labels)
        if labels.ndim == 2:  # one-hot labels of a sigmoid head trained on single-label data (VATT audio)
            labels = labels.argmax(-1)
        return {"accuracy": float(accuracy(np.asarray(logits).argmax(-1), labels))}

    return compute
