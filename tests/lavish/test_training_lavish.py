"""LAVisH through the existing training entry point (event localisation on real clips) and the pipeline.

Starts from a LAVisH folder built on a tiny local Swin-V2 (`from_pretrained_backbone`), as a user without released
LAVisH weights would: `run_training(task="event-localization")` streams the clips through the saved processor,
applies the config's trainable-parameter policy (adapters + head) and reports it.
"""

import json
import os

import pytest
import torch
from transformers import Swinv2Config, Swinv2Model, TrainingArguments, pipeline

import hf_av  # noqa: F401  (registers the family)
from hf_av.conversion.lavish import lavish_processor_for_config
from hf_av.training import AudioVisualJobArguments, run_training
from modeling.lavish import LavishForAudioVisualEventLocalization
from tests.data.helpers import write_clip

LABELS = ["dog", "bell", "background"]


@pytest.fixture(scope="module")
def start_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("lavish_start")
    torch.manual_seed(0)
    Swinv2Model(Swinv2Config(image_size=16, patch_size=2, embed_dim=16, depths=[2], num_heads=[2], window_size=4,
                             drop_path_rate=0.1)).save_pretrained(root / "swinv2")
    model = LavishForAudioVisualEventLocalization.from_pretrained_backbone(
        root / "swinv2", adapter_reduction_factor=4, classifier_hidden_size=8, num_labels=3,
        id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)},
    )
    model.save_pretrained(root / "lavish")
    lavish_processor_for_config(model.config).save_pretrained(root / "lavish")
    return root / "lavish"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("lavish_corpus")
    with open(root / "manifest.jsonl", "w") as handle:
        for i in range(4):
            # AVE layout: ten one-second segments (the processor's frame count is fixed at ten)
            path = write_clip(root / f"clip{i}.mp4", index=i * 5, num_frames=8, size=24, seconds=10.0)
            labels = [LABELS[i % 2]] * 4 + ["background"] * 6
            handle.write(json.dumps({"path": os.path.basename(path), "segment_labels": labels}) + "\n")
    return root


def test_event_localization_training_moves_only_adapters_and_head(start_folder, corpus, tmp_path):
    job = AudioVisualJobArguments(
        task="event-localization", train_manifest=str(corpus / "manifest.jsonl"), media_root=str(corpus),
        model_name_or_path=str(start_folder),
    )
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-2,
                             save_strategy="no", report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0,
                             disable_tqdm=True)
    results = run_training(job, args)
    trainable = results["trainable_parameters"]
    assert 0 < trainable["trainable"] < trainable["total"]

    before = LavishForAudioVisualEventLocalization.from_pretrained(start_folder).state_dict()
    after = LavishForAudioVisualEventLocalization.from_pretrained(tmp_path).state_dict()
    moved = {key for key in before if not torch.equal(before[key], after[key])}
    assert moved, "nothing trained"
    # adapters (incl. their BatchNorm statistics) and head only; the frozen Swin-V2 is untouched
    assert all(key.startswith(("lavish.adapter_blocks.", "classifier.")) for key in moved), sorted(moved)[:5]
    assert any(key.startswith("classifier.") for key in moved)


def test_event_localization_pipeline_labels_every_segment(start_folder, corpus):
    localizer = pipeline("audio-visual-event-localization", model=str(start_folder))
    result = localizer(str(corpus / "clip0.mp4"))
    segments = result["segments"] if isinstance(result, dict) else result[0]["segments"]
    assert len(segments) == 10 and all(segment["label"] in LABELS for segment in segments)
