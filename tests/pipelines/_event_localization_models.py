"""Tiny LAVisH and DG-SCT configurations, model folders and segment-labelled clip corpora for the event-localisation
pipeline, training and robustness tests (real media written with PyAV; random-weight models saved with
`save_pretrained` and the processor the family row gives for the config)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ._helpers import write_clip

SEGMENTS = 3
EVENT_LABELS = ["dog", "engine", "background"]  # background last, as AVE (and DG-SCT's head) has it

# LAVisH: one Swin-V2 stage over 16 x 16 frames and 16 x 16 spectrogram images
LAVISH_TINY = {
    "backbone_config": {"model_type": "swinv2", "image_size": 16, "patch_size": 2, "embed_dim": 16, "depths": [2], "num_heads": [2],
                        "window_size": 4, "drop_path_rate": 0.0},
    "adapter_reduction_factor": 4,
    "adapter_num_latent_tokens": 2,
    "classifier_hidden_size": 8,
    "num_segments": SEGMENTS,
}

# DG-SCT: 3-stage Swin-V2 (32 px) and HTS-AT (32 x 32 image of 8 mel bins x 128 frames, freq_ratio 4 as released);
# 8 kHz with hop 80 gives 101 frames per 1-s segment, so one tile fits the image
DG_SCT_TINY = {
    "vision_config": {"image_size": 32, "patch_size": 4, "embed_dim": 8, "depths": [2, 2, 2], "num_heads": [1, 2, 2],
                      "window_size": 2, "drop_path_rate": 0.0},
    "audio_config": {"spec_size": 32, "num_mel_bins": 8, "patch_size": 4, "patch_stride": [4, 4],
                     "patch_embeds_hidden_size": 8, "depths": [1, 1, 2], "num_attention_heads": [1, 2, 2],
                     "window_size": 2, "hidden_size": 32, "sampling_rate": 8000, "n_fft": 256, "hop_length": 80,
                     "f_max": 4000.0, "drop_path_rate": 0.0},
    "num_segments": SEGMENTS,
    "num_latent_tokens": 2,
    "adapter_reduction_factor": 2,
    "temporal_audio_dim": 8,
    "temporal_visual_dim": 16,
    "temporal_hidden_size": 8,
    "temporal_intermediate_size": 16,
    "temporal_num_attention_heads": 2,
    "class_activation_top_k": 2,
}

TINY = {"lavish": LAVISH_TINY, "dg-sct": DG_SCT_TINY}


def labelled(settings: dict, labels=EVENT_LABELS) -> dict:
    return {**settings, "id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}


def tiny_config(model_type: str, **overrides):
    from transformers import AutoConfig

    import hf_av  # noqa: F401  (registers the families)

    return AutoConfig.for_model(model_type, **{**labelled(TINY[model_type]), **overrides})


def save_tiny_event_model(path: str | Path, model_type: str, seed: int = 0, **overrides) -> Path:
    """A random-weight event-localisation model of `model_type` with its processor (`processor_for_config`)."""
    import torch

    from hf_av.families import get_family
    from hf_av.training.tasks import processor_for_config

    config = tiny_config(model_type, **overrides)
    torch.manual_seed(seed)
    model = get_family(model_type).head_for_task("event-localization")(config).eval()
    path = Path(path)
    model.save_pretrained(path)
    processor_for_config(config).save_pretrained(path)
    return path


def write_segment_corpus(root: str | Path, num_clips: int = 4, seconds: float = 3.0) -> Path:
    """`num_clips` real mp4 clips (tone + moving square) and `manifest.csv` with one label per 1-s segment
    (`;`-separated, `SEGMENTS` per clip): a low tone is a dog, a high one an engine, the last second background."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(num_clips):
        event = EVENT_LABELS[index % 2]
        path = write_clip(root / f"clip{index}.mp4", seconds=seconds, fps=8, size=32,
                          frequency=300.0 if event == "dog" else 2000.0, seed=index)
        labels = [event] * (SEGMENTS - 1) + ["background"]
        rows.append({"path": path.name, "segment_labels": ";".join(labels)})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "segment_labels"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def tiny_overrides(model_type: str) -> str:
    """`--config_overrides` JSON of the tiny config (labels come from the manifest)."""
    return json.dumps(TINY[model_type])
