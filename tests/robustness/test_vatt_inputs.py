"""Bad inputs to VATT beyond the ones `tests/vatt` and `tests/processing/test_vatt_processing.py` already cover
(model-level frame count / sample count / text length / TF layout, processor rates and frames, converter prefix and
other-model checkpoints): here the same mistakes made through the pipelines and the training entry point, a missing
modality, over-long text where it is cut (tokenizer) versus refused (model), and an original checkpoint handed to
training. Every case is a clear `ValueError` naming what was expected and what was found, or a documented result."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainingArguments, pipeline

import hf_av  # noqa: F401
from hf_av.conversion.vatt import processor_for_config
from hf_av.errors import MediaDecodingError
from hf_av.processing.vatt import VattFeatureExtractor
from hf_av.training import AudioVisualJobArguments, build_trainer, run_training
from modeling.vatt import VattConfig, VattForAudioClassification, VattForPreTraining, VattForVideoClassification
from tests.media_factory import write_media
from tests.training.test_vatt_training import TINY_VATT, _clip

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vatt"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("vatt_robust")
    silent = root / "silent.mp4"
    frames = [np.full((24, 32, 3), 40 * i % 255, np.uint8) for i in range(12)]
    write_media(silent, frames=frames, fps=25, video_options={"threads": "1", "preset": "ultrafast"})
    return {"clip": _clip(root / "clip.mp4", 0), "other": _clip(root / "other.mp4", 1), "silent": str(silent),
            "root": root}


def _folder(path, model_class, **overrides):
    config = VattConfig(**dict(TINY_VATT, **overrides))
    torch.manual_seed(0)
    model_class(config).eval().save_pretrained(path)
    processor_for_config(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("vatt_pre"), VattForPreTraining)


@pytest.fixture(scope="module")
def audio_classifier_dir(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("vatt_audio_cls"), VattForAudioClassification, modalities=["audio"],
                   num_labels=2)


# ------------------------------------------------------------------------------------------------ missing modality
def test_pretraining_model_without_a_second_modality_names_what_the_loss_needs():
    model = VattForPreTraining(VattConfig(**TINY_VATT)).eval()
    with pytest.raises(ValueError, match="needs pixel_values and input_values and/or input_ids"):
        model(pixel_values=torch.rand(1, 4, 3, 16, 16) * 2 - 1)


def test_classifier_given_the_other_modality_names_the_argument():
    model = VattForVideoClassification(VattConfig(**dict(TINY_VATT, modalities=["visual"], num_labels=2)))
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['input_values'\]"):
        model(pixel_values=torch.rand(1, 4, 3, 16, 16), input_values=torch.randn(1, 1024))


def test_audio_less_clip_through_the_audio_classifier_pipeline(audio_classifier_dir, clips):
    classifier = pipeline("audio-visual-classification", model=audio_classifier_dir)
    with pytest.raises(MediaDecodingError, match=r"silent\.mp4.*no audio"):
        classifier(clips["silent"])


def test_audio_less_clip_as_a_retrieval_query(pretrained_dir, clips):
    retriever = pipeline("audio-visual-retrieval", model=pretrained_dir)
    with pytest.raises(MediaDecodingError, match=r"silent\.mp4.*no audio"):
        retriever(clips["silent"], candidates=[clips["clip"], clips["other"]], query_modality="audio")


def test_retrieval_with_a_classifier_folder_names_the_missing_joint_space(audio_classifier_dir, clips):
    retriever = pipeline("audio-visual-retrieval", model=audio_classifier_dir)
    with pytest.raises(ValueError, match="no common-space head"):
        retriever(clips["clip"], candidates=[clips["clip"]], query_modality="audio", candidate_modality="audio")


def test_audio_less_clip_in_a_pretraining_manifest_is_skipped_and_named(clips, tmp_path):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "text"])
        # batches stay at 2 clips after the skip (the video-audio head's BatchNorm needs 2 in training)
        writer.writerows([[clips["clip"], "a tone"], [clips["silent"], "no sound"], [clips["other"], "a tone"],
                          [clips["clip"], "a tone again"], [clips["other"], "another tone"]])
    job = AudioVisualJobArguments(task="pretraining", model_type="vatt", train_manifest=str(manifest),
                                  config_overrides=json.dumps(TINY_VATT), max_decode_error_fraction=0.5)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                             report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=1)
    results = run_training(job, args)
    assert results["decode_errors"]["failed_samples"] == [clips["silent"]]
    assert len(results["train_loss_history"]) == 2


# ------------------------------------------------------------------------------------------- wrong rate, text length
def test_wrong_sample_rate_through_the_pipeline_names_both_rates(audio_classifier_dir):
    classifier = pipeline("audio-visual-classification", model=audio_classifier_dir)
    classifier.processor.feature_extractor = VattFeatureExtractor(num_samples=1024, resample_input=False)
    with pytest.raises(ValueError, match=r"48000 Hz.*16000|16000.*48000"):
        classifier({"audio": np.zeros(16000, np.float32), "sampling_rate": 16000})


def test_default_processor_resamples_other_rates_for_the_pipeline(audio_classifier_dir):
    classifier = pipeline("audio-visual-classification", model=audio_classifier_dir)
    result = classifier({"audio": 0.1 * np.ones(16000, np.float32), "sampling_rate": 16000}, top_k=2)
    assert len(result) == 2 and all(0.0 <= r["score"] <= 1.0 for r in result)


def test_over_long_text_is_cut_by_the_tokenizer_and_refused_by_the_model(pretrained_dir, clips):
    retriever = pipeline("audio-visual-retrieval", model=pretrained_dir)
    max_words = TINY_VATT["text_max_length"]
    long_text = " ".join(["word"] * (3 * max_words))
    tokens = retriever.processor(text=[long_text], return_tensors="pt")
    assert tokens["input_ids"].shape == (1, max_words)
    # the query is the first max_words words, exactly as the original's tokenizer cuts it
    cut = retriever({"text": long_text}, candidates=[clips["clip"], clips["other"]], query_modality="text")
    short = retriever({"text": " ".join(["word"] * max_words)}, candidates=[clips["clip"], clips["other"]],
                      query_modality="text")
    assert [r["score"] for r in cut] == pytest.approx([r["score"] for r in short], abs=1e-6)
    with pytest.raises(ValueError, match=rf"{max_words + 1} words, more than this model's maximum"):
        retriever.model.get_text_features(torch.ones(1, max_words + 1, dtype=torch.long))


def test_processor_frame_count_the_model_cannot_patch_fails_at_the_first_step(clips, tmp_path):
    folder = tmp_path / "odd_frames"
    config = VattConfig(**TINY_VATT)
    VattForPreTraining(config).save_pretrained(folder)
    processor = processor_for_config(config)
    processor.video_processor.num_frames = 3  # not a multiple of the temporal patch (2)
    processor.save_pretrained(folder)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path\n{clips['clip']}\n{clips['other']}\n")
    job = AudioVisualJobArguments(task="pretraining", train_manifest=str(manifest), model_name_or_path=str(folder))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2,
                             report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True)
    trainer, _ = build_trainer(job, args)
    with pytest.raises(ValueError, match=r"frames \(3\) must be a multiple of 2"):
        trainer.train()


# ------------------------------------------------------------------------------------- checkpoints given to training
@pytest.mark.parametrize("checkpoint", ["tx_fac", "other_model"])
def test_an_original_tf_checkpoint_prefix_given_to_training_says_convert_first(checkpoint, tmp_path):
    prefix = next((FIXTURES / checkpoint).glob("ckpt-*.index")).with_suffix("")
    job = AudioVisualJobArguments(task="pretraining", train_manifest=str(tmp_path / "m.csv"),
                                  model_name_or_path=str(prefix))
    (tmp_path / "m.csv").write_text("path\nclip.mp4\n")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, report_to=[], use_cpu=True)
    with pytest.raises(ValueError, match="original checkpoint, not a model folder: convert it first"):
        build_trainer(job, args)


def test_a_missing_checkpoint_prefix_given_to_training_is_named(tmp_path):
    (tmp_path / "m.csv").write_text("path\nclip.mp4\n")
    job = AudioVisualJobArguments(task="pretraining", train_manifest=str(tmp_path / "m.csv"),
                                  model_name_or_path=str(tmp_path / "ckpt-7"))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, report_to=[], use_cpu=True)
    with pytest.raises(ValueError, match=r"ckpt-7: no such folder \(and no TF checkpoint"):
        build_trainer(job, args)


def test_classification_of_a_modality_the_folder_has_no_tower_for(audio_classifier_dir, clips, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\n{clips['clip']},a\n{clips['other']},b\n")
    job = AudioVisualJobArguments(task="classification", train_manifest=str(manifest),
                                  model_name_or_path=audio_classifier_dir, modalities="visual")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, report_to=[], use_cpu=True)
    with pytest.raises(ValueError, match=r"--modalities visual: the model has no visual tower"):
        build_trainer(job, args)
