"""`hf-av train --task video-parsing | question-answering | segmentation` on tiny datasets in the original layouts
(LLP, MUSIC-AVQA, AVSBench S4 and MS3; `hf_av.data.dg_sct_tasks`): three steps through the shared Trainer entry
point lower the task loss of the model on its training clips (issue 17's training proof), the run evaluates the
task's metrics and saves a folder that the Auto classes load."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoProcessor, TrainingArguments

import hf_av  # noqa: F401  (registers the families)
from hf_av.data.dg_sct_tasks import (
    DgSctTaskCollator,
    stream_task_rows,
    write_synthetic_avsbench_ms3,
    write_synthetic_avsbench_s4,
    write_synthetic_llp,
    write_synthetic_music_avqa,
)
from hf_av.training import AudioVisualJobArguments, build_trainer, cli_main
from hf_av.training.layouts import LAYOUTS

BACKBONE = {
    "vision_config": {"image_size": 32, "patch_size": 4, "embed_dim": 8, "depths": [2, 2, 2], "num_heads": [1, 2, 2],
                      "window_size": 2, "drop_path_rate": 0.0},
    "audio_config": {"spec_size": 32, "num_mel_bins": 8, "patch_size": 4, "patch_stride": [4, 4],
                     "patch_embeds_hidden_size": 8, "depths": [1, 1, 2], "num_attention_heads": [1, 2, 2],
                     "window_size": 2, "hidden_size": 32, "sampling_rate": 8000, "n_fft": 256, "hop_length": 80,
                     "f_max": 4000.0, "drop_path_rate": 0.0},
    "num_segments": 3, "num_latent_tokens": 2, "adapter_reduction_factor": 2, "temporal_audio_dim": 8,
    "temporal_visual_dim": 16, "temporal_hidden_size": 8, "temporal_intermediate_size": 16,
    "temporal_num_attention_heads": 2, "class_activation_top_k": 2,
}
TASKS = {
    "video-parsing": ("dg-sct-avvp", {"parsing_hidden_size": 8, "clip_feature_size": 6,
                                      "grouping_num_attention_heads": 2, "audio_grouping_depth": 1,
                                      "visual_grouping_depth": 1, "audio_visual_grouping_depth": 1}),
    # init std 0.2: at this width the default 0.02 keeps the answer logits near zero for many steps
    "question-answering": ("dg-sct-avqa", {"question_max_length": 14, "question_embedding_size": 8,
                                           "question_hidden_size": 8, "qa_num_attention_heads": 2,
                                           "match_hidden_sizes": [8, 4, 4], "initializer_range": 0.2}),
    "segmentation": ("dg-sct-avs", {"num_segments": 5, "decoder_channels": 4, "feature_map_sizes": [8, 4, 2],
                                    "fusion_stages": [0, 1, 2], "audio_feature_size": 8,
                                    "temporal_visual_fc_dim": 4, "mask_head_sizes": [4, 4]}),
}
# MS3: the same head with `avs_setting="ms3"` (five-frame mask loss + audio-visual matching loss)
TASKS["segmentation-ms3"] = ("dg-sct-avs", {**TASKS["segmentation"][1], "avs_setting": "ms3"})
WRITERS = {
    "video-parsing": lambda root: write_synthetic_llp(root / "AVVP", num_train=4, num_eval=2, num_segments=3),
    "question-answering": lambda root: write_synthetic_music_avqa(root / "AVQA", num_videos=2, num_segments=3),
    "segmentation": lambda root: write_synthetic_avsbench_s4(root / "Single-source", num_train=4, num_eval=2),
    "segmentation-ms3": lambda root: write_synthetic_avsbench_ms3(root / "Multi-sources", num_train=4, num_eval=2),
}
METRICS = {
    "video-parsing": {"segment_f1_audio", "segment_f1_visual", "segment_f1_audio_visual", "segment_f1_type_average",
                      "segment_f1_event_average", "video_mAP", "num_clips"},
    "question-answering": {"accuracy", "num_questions"},
    "segmentation": {"mIoU", "F_score", "num_clips"},
}
METRICS["segmentation-ms3"] = METRICS["segmentation"]
HEADS = {"video-parsing": "DgSctForAudioVisualVideoParsing", "question-answering": "DgSctForAudioVisualQuestionAnswering",
         "segmentation": "DgSctForAudioVisualSegmentation", "segmentation-ms3": "DgSctForAudioVisualSegmentation"}


def _task(case):
    """The `--task` of a test case (`segmentation-ms3` runs `segmentation` on the MS3 layout)."""
    return case.split("-ms3")[0]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _flags(case, files, out):
    model_type, head = TASKS[case]
    return [
        "--task", _task(case), "--train_manifest", str(files["train"]), "--eval_manifest", str(files["eval"]),
        "--model_type", model_type, "--config_overrides", json.dumps({**BACKBONE, **head}),
        "--output_dir", str(out), "--max_steps", "3", "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-2", "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none",
        "--use_cpu", "--seed", "0", "--disable_tqdm", "true", "--eval_batch_size", "4",
    ]


def _training_loss(model, case, files, job):
    """The training objective over all the training clips in one batch: train mode (HTS-AT's input BatchNorm
    normalises with the batch's statistics while training; its running statistics, which eval mode would use, drift
    during the steps as in the original), with the same dropout masks for both models (fixed seed)."""
    layout = LAYOUTS[_task(case)]
    processor = AutoProcessor.from_pretrained(job["output_dir"])
    rows = layout.read(files["train"], AudioVisualJobArguments(**job["arguments"]), model.config, train=True, seed=0)
    examples = list(stream_task_rows(rows, layout.decoder(processor, model.config)))
    batch = DgSctTaskCollator(layout.train_keys)(examples)
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        return float(model(**batch).loss)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_hf_av_train_lowers_the_task_loss_evaluates_and_saves(task, tmp_path, capsys):
    """`task` is a test case: a task name, or `segmentation-ms3` (the segmentation task on the MS3 layout)."""
    files = WRITERS[task](tmp_path / "data")
    out = tmp_path / "run"
    flags = _flags(task, files, out)
    assert cli_main(flags) == 0
    stdout = capsys.readouterr().out  # Trainer's log lines, then the command's JSON summary
    printed = json.loads(stdout[stdout.index('{\n  "metrics"'):])
    assert printed["output_dir"] == str(out) and set(printed["metrics"]) == METRICS[task]
    results = json.loads((out / "hf_av_results.json").read_text())
    assert set(results["metrics"]) == METRICS[task]
    assert len(results["train_loss_history"]) == 3
    assert results["decode_errors"]["num_failed"] == 0
    assert 0 < results["trainable_parameters"]["trainable"] < results["trainable_parameters"]["total"]

    trained = AutoModel.from_pretrained(out)
    assert type(trained).__name__ == HEADS[task]
    assert AutoConfig.from_pretrained(out).model_type == TASKS[task][0]
    # the untrained model of the run: build_trainer seeds the initialisation with --seed, as the run did
    from transformers import HfArgumentParser

    job, training_args = HfArgumentParser((AudioVisualJobArguments, TrainingArguments)).parse_args_into_dataclasses(
        args=[*flags[:flags.index("--output_dir") + 1], str(tmp_path / "initial"),
              *flags[flags.index("--output_dir") + 2:]])
    initial, _ = build_trainer(job, training_args)
    if task == "segmentation-ms3":
        assert trained.config.avs_setting == "ms3"
        examples = list(stream_task_rows(LAYOUTS["segmentation"].read(files["train"], job, trained.config, train=True,
                                                                       seed=0),
                                         LAYOUTS["segmentation"].decoder(AutoProcessor.from_pretrained(out),
                                                                         trained.config)))
        assert tuple(examples[0]["labels"].shape)[0] == 5  # the MS3 loss trains on all five masks
    arguments = {"task": _task(task), "train_manifest": str(files["train"]), "model_type": TASKS[task][0]}
    context = {"output_dir": str(out), "arguments": arguments}
    before = _training_loss(initial.model, task, files, context)
    after = _training_loss(trained, task, files, context)
    assert after < before, (before, after)


def test_fine_tuning_a_saved_folder_keeps_its_labels_and_question_vocabulary(tmp_path):
    files = WRITERS["question-answering"](tmp_path / "data")
    first = tmp_path / "first"
    flags = _flags("question-answering", files, first)
    flags[flags.index("--max_steps") + 1] = "1"
    assert cli_main(flags) == 0
    # a second run from the saved folder: no --model_type / --config_overrides, the folder's processor is reused
    second = tmp_path / "second"
    start = flags.index("--model_type")
    flags = flags[:start] + ["--model_name_or_path", str(first)] + flags[start + 4:]
    flags[flags.index("--output_dir") + 1] = str(second)
    assert cli_main(flags) == 0
    config = AutoConfig.from_pretrained(second)
    assert config.id2label == {0: "yes", 1: "violin", 2: "one", 3: "piano"}
    assert AutoProcessor.from_pretrained(second).tokenizer.get_vocab() == \
        AutoProcessor.from_pretrained(first).tokenizer.get_vocab()
    assert json.loads((second / "hf_av_results.json").read_text())["metrics"]["num_questions"] == 6


def test_video_parsing_without_clip_features_needs_a_model_built_without_them(tmp_path):
    from modeling.dg_sct import DgSctVideoParsingConfig

    files = write_synthetic_llp(tmp_path / "AVVP", num_train=1, num_eval=0, num_segments=10, clip_feature_size=None)
    job = AudioVisualJobArguments(task="video-parsing", train_manifest=str(files["train"]), model_type="dg-sct-avvp")
    labels = LAYOUTS["video-parsing"].config_overrides(job)  # the 25 LLP classes
    with pytest.raises(ValueError, match=r"no LLP_dataset/feats/r2plus1d_18 folder, but the model takes 512-d clip "
                                         r"features.*\"clip_feature_size\": null"):
        LAYOUTS["video-parsing"].read(files["train"], job, DgSctVideoParsingConfig(**labels), train=True, seed=0)
    rows = LAYOUTS["video-parsing"].read(files["train"], job, DgSctVideoParsingConfig(**labels, clip_feature_size=None),
                                         train=True, seed=0)
    assert len(rows) == 1
