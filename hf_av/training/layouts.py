"""Training tasks read from an original dataset layout instead of a manifest: DG-SCT's video parsing (LLP),
question answering (MUSIC-AVQA) and segmentation (AVSBench S4 or MS3).

`--train_manifest` / `--eval_manifest` name the original annotation file (`AVVP_train.csv`, `avqa-train.json`,
`s4_meta_data.csv` / `ms3_meta_data.csv`), `--media_root` the dataset folder when it is not the default of
`hf_av.data.dg_sct_tasks`.
`build_layout_trainer` builds model, processor, streams (through the readers and decoders of
`hf_av.data.dg_sct_tasks`, with the run's decode-error policy) and the same `AudioVisualTrainer` as every other task;
`evaluate_layout` computes the task's metrics after training (LLP segment-level F-scores, AVQA accuracy, AVSBench
mIoU and F-score).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "QuestionAnsweringLayout",
    "SegmentationLayout",
    "VideoParsingLayout",
    "build_layout_trainer",
    "evaluate_layout",
]


def _dg_sct_base_processor(config):
    from hf_av.conversion.dg_sct import processor_for_config

    return processor_for_config(config)


class VideoParsingLayout:
    """LLP (`AVVP_*.csv`): weak multi-hot labels for training, the segment annotations for evaluation."""

    train_keys = ("input_values", "pixel_values", "clip_features", "labels")
    eval_keys = ("input_values", "pixel_values", "clip_features", "labels", "audio_segment_labels",
                 "visual_segment_labels")

    def config_overrides(self, job) -> dict:
        from hf_av.data.dg_sct_tasks import LLP_CATEGORIES

        names = list(LLP_CATEGORIES)
        return {"num_labels": len(names), "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)}}

    def processor(self, config, job):
        from hf_av.processing.dg_sct_tasks import DgSctVideoParsingProcessor

        base = _dg_sct_base_processor(config)
        return DgSctVideoParsingProcessor(base.feature_extractor, base.image_processor)

    def read(self, path, job, config, *, train: bool, seed: int) -> list[dict]:
        from hf_av.data.dg_sct_tasks import read_llp_annotations

        names = [config.id2label[i] for i in range(config.num_labels)]
        rows = read_llp_annotations(path, job.media_root, label_names=names, num_segments=config.num_segments,
                                    segment_annotations=False if train else None)
        if config.clip_feature_size is not None and json.loads(rows[0]["example"])["clip_features"] is None:
            raise ValueError(
                f"{path}: the layout has no LLP_dataset/feats/r2plus1d_18 folder, but the model takes "
                f"{config.clip_feature_size}-d clip features; add the R(2+1)D-18 features, or train a model without "
                "them (--config_overrides '{\"clip_feature_size\": null}')"
            )
        return rows

    def decoder(self, processor, config):
        from hf_av.data.dg_sct_tasks import DgSctVideoParsingDecoder

        return DgSctVideoParsingDecoder(processor, config.num_labels, getattr(config, "clip_feature_size", None))

    @staticmethod
    def predictions(outputs, threshold: float = 0.5):
        """The original's segment decisions: a class is in a segment of a modality when its frame probability and
        the video-level (audio-visual) probability are both >= `threshold`; returns `[B, T, C]` audio and visual."""
        video = (outputs.global_probs >= threshold).float()[:, None]
        audio = (outputs.audio_frame_probs >= threshold).float() * video
        visual = (outputs.visual_frame_probs >= threshold).float() * video
        return audio, visual

    def evaluate(self, model, batches) -> dict:
        from hf_av.metrics import avvp_segment_f1, mean_average_precision

        audio, visual, audio_ref, visual_ref, video_probs, video_labels = [], [], [], [], [], []
        for batch in batches:
            segment_refs = (batch.pop("audio_segment_labels", None), batch.pop("visual_segment_labels", None))
            labels = batch.pop("labels")
            outputs = model(**batch)
            predicted_audio, predicted_visual = self.predictions(outputs)
            audio.append(predicted_audio.cpu())
            visual.append(predicted_visual.cpu())
            video_probs.append(outputs.global_probs.cpu())
            video_labels.append(labels.cpu())
            if segment_refs[0] is not None:
                audio_ref.append(segment_refs[0].cpu())
                visual_ref.append(segment_refs[1].cpu())
        metrics = {"num_clips": int(sum(len(p) for p in audio))}
        labels = torch.cat(video_labels).numpy()
        if labels.sum(0).any():
            metrics["video_mAP"] = mean_average_precision(torch.cat(video_probs).numpy(), labels)["mAP"]
        if audio_ref:
            scores = avvp_segment_f1(torch.cat(audio), torch.cat(visual), torch.cat(audio_ref), torch.cat(visual_ref))
            metrics.update({f"segment_f1_{name}": value for name, value in scores.items()})
        return metrics


class QuestionAnsweringLayout:
    """MUSIC-AVQA (`avqa-*.json`): question and answer vocabularies from the train json, as the original."""

    train_keys = ("input_values", "pixel_values", "input_ids", "negative_pixel_values", "labels")
    eval_keys = ("input_values", "pixel_values", "input_ids", "labels")

    def _vocabularies(self, job):
        from hf_av.data.dg_sct_tasks import music_avqa_vocabularies

        return music_avqa_vocabularies(job.train_manifest)

    def config_overrides(self, job) -> dict:
        words, answers = self._vocabularies(job)
        overrides = {"num_labels": len(answers), "id2label": dict(enumerate(answers)),
                     "label2id": {answer: i for i, answer in enumerate(answers)}}
        if not job.model_name_or_path:  # a fresh question encoder: a word table of the train json's vocabulary
            overrides["question_vocab_size"] = len(words)
        return overrides

    def processor(self, config, job):
        from hf_av.processing.dg_sct_tasks import DgSctQuestionAnsweringProcessor, DgSctQuestionTokenizer

        words, _ = self._vocabularies(job)
        if len(words) > config.question_vocab_size:
            raise ValueError(
                f"{job.train_manifest} has {len(words)} question words (with <pad>); the model's word table holds "
                f"{config.question_vocab_size} (question_vocab_size)"
            )
        base = _dg_sct_base_processor(config)
        tokenizer = DgSctQuestionTokenizer(words=words, model_max_length=config.question_max_length)
        return DgSctQuestionAnsweringProcessor(base.feature_extractor, base.image_processor, tokenizer=tokenizer)

    def read(self, path, job, config, *, train: bool, seed: int) -> list[dict]:
        from hf_av.data.dg_sct_tasks import read_music_avqa_annotations

        return read_music_avqa_annotations(path, job.media_root, num_segments=config.num_segments, negatives=train,
                                           seed=seed)

    def decoder(self, processor, config):
        from hf_av.data.dg_sct_tasks import DgSctQuestionAnsweringDecoder

        return DgSctQuestionAnsweringDecoder(processor, [config.id2label[i] for i in range(config.num_labels)])

    def evaluate(self, model, batches) -> dict:
        from hf_av.metrics import accuracy

        predictions, references = [], []
        for batch in batches:
            labels = batch.pop("labels")
            predictions.append(model(**batch).logits.argmax(-1).cpu())
            references.append(labels.cpu())
        predictions, references = torch.cat(predictions).numpy(), torch.cat(references).numpy()
        return {"accuracy": float(accuracy(predictions, references)), "num_questions": int(len(references))}


class SegmentationLayout:
    """AVSBench S4 (`s4_meta_data.csv`: the train split's first-frame masks for training) or MS3
    (`ms3_meta_data.csv`: all five masks in every split, for the MS3 model's five-frame loss); the evaluated split's
    five masks per clip for mIoU and F-score. The layout comes from the metadata file (`read_avsbench_annotations`);
    a model of the other `avs_setting` trains on the masks the layout gives, with a warning."""

    train_keys = ("input_values", "pixel_values", "labels")
    eval_keys = train_keys

    def config_overrides(self, job) -> dict:
        return {}

    def processor(self, config, job):
        from hf_av.processing.dg_sct_tasks import DgSctSegmentationImageProcessor, DgSctSegmentationProcessor

        base = _dg_sct_base_processor(config)
        extractor = base.feature_extractor
        extractor.tile_repeats = min(5, extractor.tile_repeats)  # AVS tiles each 1-s segment 5x (5-s inputs)
        # frames at the mask size (AVSBench's 224 for the release model, which resizes them to its 192)
        size = config.mask_size
        return DgSctSegmentationProcessor(extractor, DgSctSegmentationImageProcessor(size={"height": size,
                                                                                           "width": size}))

    def read(self, path, job, config, *, train: bool, seed: int) -> list[dict]:
        from hf_av.data.dg_sct_tasks import avsbench_setting, read_avsbench_annotations

        setting = avsbench_setting(path, job.media_root)
        model_setting = getattr(config, "avs_setting", setting)
        if setting != model_setting:
            logger.warning("%s is an AVSBench %s layout but the model is set up for %s (config.avs_setting)",
                           path, setting.upper(), model_setting.upper())
        return read_avsbench_annotations(path, job.media_root, split="train" if train else job.eval_split,
                                         setting=setting)

    def decoder(self, processor, config):
        from hf_av.data.dg_sct_tasks import DgSctSegmentationDecoder

        return DgSctSegmentationDecoder(processor, config.mask_size)

    def evaluate(self, model, batches) -> dict:
        from hf_av.metrics import mask_f_score, mask_miou

        logits, masks = [], []
        for batch in batches:
            labels = batch.pop("labels")
            frame_logits = model(**batch).logits
            logits.append((frame_logits[:, 0] if labels.ndim == 3 else frame_logits).cpu())  # train split: frame 1
            masks.append(labels.cpu())
        logits, masks = torch.cat(logits).numpy(), torch.cat(masks).numpy()
        return {"mIoU": mask_miou(logits, masks), "F_score": mask_f_score(logits, masks),
                "num_clips": int(len(masks))}


LAYOUTS = {
    "video-parsing": VideoParsingLayout(),
    "question-answering": QuestionAnsweringLayout(),
    "segmentation": SegmentationLayout(),
}


def _layout(task):
    if task.layout not in LAYOUTS:
        raise ValueError(f"task {task.name!r} has no dataset layout reader (known: {sorted(LAYOUTS)})")
    return LAYOUTS[task.layout]


def _layout_stream(rows, decoder, job, training_args, *, train: bool):
    from hf_av.data import split_by_node
    from hf_av.data.dg_sct_tasks import stream_task_rows

    from .run import InMemoryExamples, _epoch_rows, _error_policy

    policy = _error_policy(job, training_args)
    if job.preprocess_once:
        return InMemoryExamples(list(stream_task_rows(rows, decoder, error_policy=policy).with_format("torch")))
    if train:
        per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
        rows = _epoch_rows(rows, per_step * training_args.world_size * training_args.max_steps, training_args.seed)
    dataset = stream_task_rows(rows, decoder, error_policy=policy)
    if training_args.world_size > 1:
        dataset = split_by_node(dataset, rank=training_args.process_index, world_size=training_args.world_size)
    return dataset


def build_layout_trainer(job, training_args, task):
    """Model, processor, streams, collator and Trainer of a layout task (returned with the eval stream)."""
    from hf_av.data.dg_sct_tasks import DgSctTaskCollator
    from transformers import set_seed

    from .run import AudioVisualTrainer, _build_model, _head_prefixes, apply_trainable_policy
    from .tasks import check_head_inputs

    layout = _layout(task)
    if not job.preprocess_once and (training_args.max_steps is None or training_args.max_steps <= 0):
        raise ValueError("streamed datasets have no length: set --max_steps (or --preprocess_once)")
    training_args.remove_unused_columns = False
    overrides = {**layout.config_overrides(job), **(json.loads(job.config_overrides) if job.config_overrides else {})}
    set_seed(training_args.seed)
    model = _build_model(replace(job, config_overrides=json.dumps(overrides)), task, None, None)
    labels = model.config.id2label
    if labels and any(isinstance(key, str) for key in labels):  # JSON keys reach a loaded config as strings
        model.config.id2label = {int(key): name for key, name in labels.items()}
    trainable = apply_trainable_policy(model, job.trainable_parameters)
    if job.model_name_or_path and (Path(job.model_name_or_path) / "processor_config.json").is_file():
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(job.model_name_or_path)
    else:
        processor = layout.processor(model.config, job)
    check_head_inputs(type(model), [key for key in layout.train_keys if key != "labels"])
    decoder = layout.decoder(processor, model.config)
    train_rows = layout.read(job.train_manifest, job, model.config, train=True, seed=training_args.seed)
    train_dataset = _layout_stream(train_rows, decoder, job, training_args, train=True)
    eval_dataset = None
    if job.eval_manifest:
        eval_rows = layout.read(job.eval_manifest, job, model.config, train=False, seed=training_args.seed)
        eval_dataset = _layout_stream(eval_rows, decoder, job, training_args, train=False)
    trainer = AudioVisualTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        data_collator=DgSctTaskCollator(layout.train_keys),
        head_learning_rate_multiplier=job.head_learning_rate_multiplier,
        head_prefixes=_head_prefixes(model),
    )
    trainer.hf_av_processor = processor
    trainer.hf_av_trainable = trainable
    return trainer, eval_dataset


@torch.no_grad()
def evaluate_layout(model, task, dataset, batch_size: int = 32) -> dict:
    """The task's metrics of `model` over an evaluation stream of `build_layout_trainer`."""
    from torch.utils.data import DataLoader

    from hf_av.data.dg_sct_tasks import DgSctTaskCollator

    layout = _layout(task)
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=DgSctTaskCollator(layout.eval_keys))
    was_training = model.training
    model.eval()
    try:
        metrics = layout.evaluate(model, ({key: value.to(device) for key, value in batch.items()} for batch in loader))
    finally:
        model.train(was_training)
    return metrics
