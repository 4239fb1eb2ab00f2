"""Tiny random-weight DG-SCT task folders (AVVP, AVQA, AVS) for the pipeline tests: the event-localisation tests'
tiny DG-SCT towers (3-stage Swin-V2 at 32 px, HTS-AT at 8 kHz), each task's head at toy width, saved with
`save_pretrained` and the processor the converter writes for the config."""

from __future__ import annotations

from pathlib import Path

from ._event_localization_models import DG_SCT_TINY, SEGMENTS

PARSING_LABELS = ["Speech", "Dog", "Car", "Violin_fiddle"]
ANSWERS = ["yes", "no", "two", "three", "piano"]
QUESTION_WORDS = ["<pad>", "How", "many", "instruments", "are", "sounding", "in", "the", "video", "Is", "piano",
                  "always", "playing"]

TASK_TINY = {
    "avvp": dict(parsing_hidden_size=8, clip_feature_size=6, grouping_num_attention_heads=2, audio_grouping_depth=1,
                 visual_grouping_depth=1, audio_visual_grouping_depth=1),
    "avqa": dict(question_vocab_size=len(QUESTION_WORDS), question_max_length=8, question_embedding_size=6,
                 question_hidden_size=5, qa_num_attention_heads=2, match_hidden_sizes=[8, 4, 4]),
    "avs": dict(decoder_channels=4, feature_map_sizes=[8, 4, 2], fusion_stages=[0, 1, 2], audio_feature_size=8, temporal_visual_fc_dim=4,
                mask_head_sizes=[4, 4]),
}
LABELS = {"avvp": PARSING_LABELS, "avqa": ANSWERS, "avs": None}  # AVS keeps its config's default labels


def tiny_task_config(task: str, **overrides):
    from transformers import AutoConfig

    import hf_av  # noqa: F401  (registers the task configs)

    labels = LABELS[task]
    named = {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}} if labels else {}
    settings = {**DG_SCT_TINY, **TASK_TINY[task], **named, **overrides}
    return AutoConfig.for_model(f"dg-sct-{task}", **settings)


def save_tiny_task_model(path: str | Path, task: str, seed: int = 0, **overrides) -> Path:
    """A random-weight DG-SCT `task` head (`avvp`, `avqa`, `avs`) and its processor in `path`."""
    import torch

    from hf_av.families import get_family

    config = tiny_task_config(task, **overrides)
    torch.manual_seed(seed)
    model = get_family(config.model_type).model_class(get_family(config.model_type).models["AutoModel"].rsplit(".", 1)[-1])
    model = model(config).eval()
    path = Path(path)
    model.save_pretrained(path)
    task_processor(task, config).save_pretrained(path)
    return path


def task_processor(task: str, config):
    """The task's processor sized for `config` (the audio front-end of `processor_for_config`: a tiny HTS-AT holds
    fewer tiles of each second than the original's 10)."""
    from hf_av.conversion.dg_sct import processor_for_config
    from hf_av.processing.dg_sct_tasks import (
        DgSctQuestionAnsweringProcessor,
        DgSctQuestionTokenizer,
        DgSctSegmentationImageProcessor,
        DgSctSegmentationProcessor,
        DgSctVideoParsingProcessor,
    )

    base = processor_for_config(config)
    if task == "avs":
        return DgSctSegmentationProcessor(base.feature_extractor, DgSctSegmentationImageProcessor())
    if task == "avqa":
        tokenizer = DgSctQuestionTokenizer(words=QUESTION_WORDS, model_max_length=config.question_max_length)
        return DgSctQuestionAnsweringProcessor(base.feature_extractor, base.image_processor, tokenizer)
    return DgSctVideoParsingProcessor(base.feature_extractor, base.image_processor)


__all__ = ["ANSWERS", "PARSING_LABELS", "QUESTION_WORDS", "SEGMENTS", "save_tiny_task_model", "task_processor", "tiny_task_config"]
