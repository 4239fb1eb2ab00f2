"""VATT through the shared training entry point on real (tiny) clips: NCE + MIL-NCE pre-training with narrations,
video and audio classification chosen by `--modalities`, exact resume."""

import csv
import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoModelForPreTraining, AutoProcessor, TrainerCallback, TrainingArguments

import hf_av  # noqa: F401  (registers the families)
from hf_av.training import AudioVisualJobArguments, build_trainer, run_training
from tests.media_factory import write_media

TINY_VATT = {
    "video_hidden_size": 16, "video_num_hidden_layers": 1, "video_num_attention_heads": 2,
    "video_intermediate_size": 32, "video_num_frames": 4, "video_image_size": 16, "video_temporal_patch_size": 2,
    "video_spatial_patch_size": 8,
    "audio_hidden_size": 16, "audio_num_hidden_layers": 1, "audio_num_attention_heads": 2,
    "audio_intermediate_size": 32, "audio_num_samples": 1024, "audio_patch_size": 128,
    "text_vocab_size": 32, "text_embedding_size": 8, "text_max_length": 4, "text_hidden_size": 12,
    "text_num_hidden_layers": 1, "text_num_attention_heads": 3, "text_intermediate_size": 24,
    "text_relative_attention_num_buckets": 8, "text_relative_attention_max_distance": 16,
    "video_audio_projection_size": 8, "video_text_projection_size": 6,
    "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "video_classifier_dropout_prob": 0.0,
}
WORDS = ["zero", "one", "two", "three"]
RATE = 48000


def _clip(path, index: int) -> str:
    """A real mp4 (H.264 + AAC, mono 48 kHz, 25 fps): a moving bar whose colour and a tone that follow `index`."""
    rng = np.random.default_rng(index)
    frames = []
    for t in range(12):
        frame = np.full((24, 32, 3), 30 + 50 * (index % 4), np.uint8)
        frame[:, (2 * t + index) % 32] = rng.integers(0, 255, 3, dtype=np.uint8)
        frames.append(frame)
    seconds = 12 / 25
    times = np.arange(int(seconds * RATE)) / RATE
    audio = (0.3 * np.sin(2 * np.pi * (300 + 200 * (index % 4)) * times)).astype(np.float32)[None]
    write_media(path, frames=frames, fps=25, audio=audio, sampling_rate=RATE, layout="mono",
                video_options={"threads": "1", "preset": "ultrafast"})
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("vatt_corpus")
    rows = []
    for i in range(8):
        _clip(root / f"clip{i}.mp4", i)
        rows.append({"path": f"clip{i}.mp4", "label": WORDS[i % 4], "text": f"The word {WORDS[i % 4].upper()}!"})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "text"])
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "no_text.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows({"path": row["path"], "label": row["label"]} for row in rows)
    return root


def _args(out, **overrides) -> TrainingArguments:
    values = dict(output_dir=str(out), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-3,
                  logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                  dataloader_num_workers=0, disable_tqdm=True, per_device_eval_batch_size=4)
    values.update(overrides)
    return TrainingArguments(**values)


def _job(corpus, task: str, **overrides) -> AudioVisualJobArguments:
    values = dict(task=task, model_type="vatt", train_manifest=str(corpus / "manifest.csv"),
                  eval_manifest=str(corpus / "manifest.csv"), media_root=str(corpus),
                  config_overrides=json.dumps(TINY_VATT), eval_batch_size=4)
    values.update(overrides)
    return AudioVisualJobArguments(**values)


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("vatt_pretrained")
    return out, run_training(_job(corpus, "pretraining"), _args(out))


def test_pretraining_with_narrations_trains_both_terms_and_saves_a_loadable_folder(pretrained):
    out, results = pretrained
    assert [entry["step"] for entry in results["train_loss_history"]] == [1, 2, 3]
    assert all(np.isfinite(entry["loss"]) for entry in results["train_loss_history"])
    assert {"audio_to_visual_recall@1", "visual_to_audio_recall@1"} <= set(results["metrics"])
    model = AutoModelForPreTraining.from_pretrained(out)
    assert type(model).__name__ == "VattForPreTraining"
    processor = AutoProcessor.from_pretrained(out)
    # the vocabulary of a text tower trained from scratch: the narrations' words, cut as the tokenizer cuts them
    assert set(WORDS) <= set(processor.tokenizer.get_vocab())
    assert processor.tokenizer("the word two")["input_ids"][2] == processor.tokenizer.get_vocab()["two"]


def test_the_collated_batch_carries_narrations_and_both_losses_are_used(corpus, tmp_path):
    trainer, _ = build_trainer(_job(corpus, "pretraining", eval_manifest=None), _args(tmp_path))
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"input_values", "pixel_values", "input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (4, TINY_VATT["text_max_length"])
    assert batch["pixel_values"].shape == (4, 1, 4, 3, 16, 16)
    assert batch["input_values"].shape == (4, 1, 1024)
    with torch.no_grad():
        output = trainer.model(**batch)
    assert output.loss_video_audio is not None and output.loss_video_text is not None
    torch.testing.assert_close(output.loss, (output.loss_video_audio + output.loss_video_text) / 2)


def test_pretraining_without_narrations_is_video_audio_nce(corpus, tmp_path):
    trainer, _ = build_trainer(_job(corpus, "pretraining", train_manifest=str(corpus / "no_text.csv"),
                                    eval_manifest=None), _args(tmp_path))
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"input_values", "pixel_values"}


def test_partly_missing_narrations_are_refused(corpus, tmp_path):
    path = tmp_path / "partial.csv"
    lines = (corpus / "manifest.csv").read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:2]) + ","
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="rows have no 'text'"):
        build_trainer(_job(corpus, "pretraining", train_manifest=str(path), eval_manifest=None), _args(tmp_path))


def test_narration_words_beyond_the_word_table_are_refused(corpus, tmp_path):
    small = dict(TINY_VATT, text_vocab_size=6)
    with pytest.raises(ValueError, match="text_vocab_size = 6"):
        build_trainer(_job(corpus, "pretraining", config_overrides=json.dumps(small), eval_manifest=None),
                      _args(tmp_path))


@pytest.mark.parametrize("modalities, head, metric_labels", [
    ("visual", "VattForVideoClassification", "index"),
    ("audio", "VattForAudioClassification", "one-hot"),
])
def test_classification_head_follows_modalities(pretrained, corpus, tmp_path, modalities, head, metric_labels):
    pretrained_dir, _ = pretrained
    job = _job(corpus, "classification", model_name_or_path=str(pretrained_dir), config_overrides=None,
               modalities=modalities)
    results = run_training(job, _args(tmp_path))
    assert 0.0 <= results["metrics"]["accuracy"] <= 1.0
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tmp_path)
    assert config.architectures == [head]
    assert config.id2label == {0: "one", 1: "three", 2: "two", 3: "zero"}
    assert config.modalities == [modalities]  # the classifier keeps its own tower only
    again = _job(corpus, "classification", model_name_or_path=str(pretrained_dir), config_overrides=None,
                 modalities=modalities, eval_manifest=None)
    trainer, _ = build_trainer(again, _args(tmp_path / "again"))
    assert type(trainer.model).__name__ == head
    batch = next(iter(trainer.get_train_dataloader()))
    # the sigmoid (multi-label) audio head gets one-hot rows; the softmax video head class ids
    assert batch["labels"].dim() == (2 if metric_labels == "one-hot" else 1)
    # the encoder comes from the pre-trained folder
    source = AutoModelForPreTraining.from_pretrained(pretrained_dir).vatt.state_dict()
    for name, value in trainer.model.vatt.state_dict().items():
        torch.testing.assert_close(value, source[name], atol=0, rtol=0, msg=name)


def test_audio_visual_classification_names_the_single_modality_heads(corpus, tmp_path):
    with pytest.raises(ValueError, match="--modalities visual"):
        build_trainer(_job(corpus, "classification", eval_manifest=None), _args(tmp_path))


class _StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
            control.should_save = True
        return control


@pytest.mark.parametrize("task, modalities", [("pretraining", "audio-visual"), ("classification", "audio")])
def test_resume_reproduces_the_uninterrupted_run(corpus, tmp_path, task, modalities):
    # DropToken and the BatchNorm statistics must continue exactly as well
    config = dict(TINY_VATT, drop_token_rate=0.5)
    job = _job(corpus, task, eval_manifest=None, modalities=modalities, config_overrides=json.dumps(config))
    straight, _ = build_trainer(job, _args(tmp_path / "straight", max_steps=4))
    straight.train()
    straight_losses = [e["loss"] for e in straight.state.log_history if "loss" in e]

    interrupted, _ = build_trainer(job, _args(tmp_path / "resumed", max_steps=4, save_strategy="steps",
                                              save_steps=100))
    interrupted.add_callback(_StopAt(2))
    interrupted.train()
    checkpoint = tmp_path / "resumed" / "checkpoint-2"
    assert checkpoint.is_dir()

    resumed, _ = build_trainer(job, _args(tmp_path / "resumed", max_steps=4))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    resumed_losses = [e["loss"] for e in resumed.state.log_history if "loss" in e]
    assert resumed_losses[-2:] == pytest.approx(straight_losses[-2:], abs=1e-6)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_build_trainer_takes_callbacks_and_a_progress_callback_replaces_trainers_bar(corpus, tmp_path):
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class Steps(TrainerCallback):
        pass

    class OwnBar(ProgressCallback):
        pass

    args = _args(tmp_path, disable_tqdm=False)
    job = _job(corpus, "pretraining", eval_manifest=None)
    plain, _ = build_trainer(job, args)
    kinds = [type(c) for c in plain.callback_handler.callbacks]
    assert ProgressCallback in kinds and PrinterCallback not in kinds
    trainer, _ = build_trainer(job, args, callbacks=[Steps, OwnBar()])
    kinds = [type(c) for c in trainer.callback_handler.callbacks]
    assert Steps in kinds and OwnBar in kinds
    assert ProgressCallback not in kinds  # replaced, not doubled
