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


def dg_sct_processor_for_config(config):
    """A DG-SCT processor matching `config`: the HTS-AT front-end of `config.audio_config` (rate, STFT, mel bins),
    `num_segments` segments and frames of the Swin-V2 `image_size`.

    Each 1-s segment is tiled (`tile_repeats`, 10 in the release) to as many copies as HTS-AT's spectrogram image
    takes (`spec_size * freq_ratio` frames: 1024 >= 1001 for the release); a small config gets fewer copies. A config
    whose image cannot hold even one second is refused, naming the sizes.
    """
    from hf_av.processing.dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor

    audio = config.audio_config
    max_frames = audio.spec_size * (audio.spec_size // audio.num_mel_bins)
    segment_samples = int(audio.sampling_rate * 1.0)
    # frames of r tiled seconds (centred STFT): r * segment_samples // hop + 1
    tile_repeats = min(10, (max_frames - 1) * audio.hop_length // segment_samples)
    if tile_repeats < 1:
        raise ValueError(
            f"DG-SCT audio_config holds {max_frames} spectrogram frames (spec_size {audio.spec_size} x freq_ratio "
            f"{audio.spec_size // audio.num_mel_bins}), fewer than one 1-s segment gives "
            f"({segment_samples // audio.hop_length + 1} at {audio.sampling_rate} Hz, hop {audio.hop_length}); "
            "use a larger spec_size / hop_length or a lower sampling_rate"
        )
    size = config.vision_config.image_size
    size = size if isinstance(size, int) else size[0]
    feature_extractor = DgSctFeatureExtractor(
        sampling_rate=audio.sampling_rate,
        num_segments=config.num_segments,
        tile_repeats=tile_repeats,
        n_fft=audio.n_fft,
        hop_length=audio.hop_length,
        num_mel_bins=audio.num_mel_bins,
        f_min=audio.f_min,
        f_max=audio.f_max,
    )
    return DgSctProcessor(feature_extractor=feature_extractor,
                          image_processor=DgSctImageProcessor(size={"height": size, "width": size}))


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
