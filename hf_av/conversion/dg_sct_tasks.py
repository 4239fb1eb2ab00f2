"""Original DG-SCT checkpoints of the other downstream tasks -> hf_av task heads.

The backbone part of every map (timm-0.6 Swin-V2 `swin.`, HTS-AT `htsat.`, the four DG-SCT module lists) is the AVE
converter's, imported from `hf_av.conversion.dg_sct`; this module adds each task head's rules:

* AVQA (`AVQA/net_grd_avst/net_avst.py` `AVQA_Fusion_Net`, saved from `nn.DataParallel`: every key starts with
  `module.`) -> `DgSctForAudioVisualQuestionAnswering`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointConversionError
from .dg_sct import _adapter_list_rules, dg_sct_config_from_original
from .htsat import htsat_key_map
from .timm_swinv2 import timm_swinv2_key_map
from .toolkit import KeyMap, drop, load_torch_checkpoint, rename

__all__ = [
    "TASKS",
    "dg_sct_task_config_from_original",
    "dg_sct_task_key_map",
    "load_original_dg_sct_task",
]

TASKS = ("avqa",)
UNUSED = "created by the original but never used in its forward"


def _backbone_map(prefix: str = "dg_sct.") -> KeyMap:
    return (
        timm_swinv2_key_map("swin.", prefix + "visual_backbone.swinv2.")
        + htsat_key_map("htsat.", prefix + "audio_backbone.audio_encoder.")
        + KeyMap(
            [drop(r"adapter_token_downsampler\.\d+\.weight", "token downsampler, " + UNUSED)]
            + _adapter_list_rules(prefix)
        )
    )


def _linear(source: str, target: str):
    return rename(source.replace(".", r"\.") + r"\.(weight|bias)", target + r".\1")


def _avqa_head_rules() -> list:
    rules = [
        drop(r"(?:fc_a1_pure|fc_a2_pure|norm3)\.(?:weight|bias)", "AVQA " + UNUSED),
        rename(r"question_encoder\.word2vec\.weight", "question_encoder.word_embeddings.weight"),
        rename(r"question_encoder\.lstm\.(\w+)", r"question_encoder.lstm.\1"),
        _linear("question_encoder.fc", "question_encoder.projection"),
        _linear("fc_a1", "answer_head.audio_projection_in"),
        _linear("fc_a2", "answer_head.audio_projection_out"),
        _linear("fc_gl", "answer_head.grounding_projection"),
        _linear("fc_fusion", "answer_head.fusion"),
        _linear("fc_ans", "answer_head.classifier"),
    ]
    rules += [_linear(f"fc{i + 1}", f"answer_head.match_layers.{i}") for i in range(9)]
    for source, target, ffn, norm in (("attn_v", "visual_attention", "1", "norm1"), ("attn_a", "audio_attention", "2", "norm2")):
        rules += [
            rename(source + r"\.(in_proj_weight|in_proj_bias)", rf"answer_head.{target}.attention.\1"),
            rename(source + r"\.out_proj\.(weight|bias)", rf"answer_head.{target}.attention.out_proj.\1"),
            _linear(f"linear{ffn}1", f"answer_head.{target}.intermediate"),
            _linear(f"linear{ffn}2", f"answer_head.{target}.output"),
            _linear(norm, f"answer_head.{target}.norm"),
        ]
    return rules


def dg_sct_task_key_map(task: str) -> KeyMap:
    """The whole original model of `task` -> its hf_av head class (keys without any `module.` prefix)."""
    if task == "avqa":
        head = _avqa_head_rules()
    else:
        raise ValueError(f"unknown DG-SCT task {task!r}; expected one of {TASKS}")
    key_map = _backbone_map() + KeyMap(head)
    key_map.name = f"DG-SCT {task.upper()} checkpoint"
    return key_map


# ------------------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------------------
def _backbone_kwargs(original_config, state_dict) -> dict:
    """The shared settings (towers, DG-SCT module flags) as `DgSctConfig` kwargs, read by the AVE converter."""
    base = dg_sct_config_from_original(original_config, state_dict)
    keys = (
        "num_latent_tokens", "adapter_reduction_factor", "adapter_conv_groups", "adapter_batch_norm",
        "adapter_layer_norm_before", "adapter_layer_norm_after", "gate_audio_adapters",
    )
    kwargs = {key: getattr(base, key) for key in keys}
    kwargs["vision_config"] = base.vision_config.to_dict()
    kwargs["audio_config"] = base.audio_config.to_dict()
    return kwargs


def dg_sct_task_config_from_original(
    task: str, original_config: Mapping[str, Any] | None = None, state_dict: Mapping[str, torch.Tensor] | None = None
):
    """The task's config from the original settings (fixture `config.json` layout: `opt`, `swin`, `htsat`,
    `heads`) and the checkpoint's tensor shapes (which win for sizes)."""
    from modeling.dg_sct import DgSctQuestionAnsweringConfig

    original_config = dict(original_config or {})
    state_dict = dict(state_dict or {})
    kwargs = _backbone_kwargs(original_config, state_dict)
    if task == "avqa":
        embeddings = state_dict.get("question_encoder.word2vec.weight")
        lstm = state_dict.get("question_encoder.lstm.weight_hh_l0")
        match = [state_dict[f"fc{i}.weight"].shape[0] for i in (1, 2, 3) if f"fc{i}.weight" in state_dict]
        answers = state_dict.get("fc_ans.weight")
        return DgSctQuestionAnsweringConfig(
            **kwargs,
            latent_token_init="zeros",
            question_vocab_size=embeddings.shape[0] if embeddings is not None else 93,
            question_embedding_size=embeddings.shape[1] if embeddings is not None else 1536,
            question_hidden_size=lstm.shape[1] if lstm is not None else 1536,
            match_hidden_sizes=match or [512, 256, 128],
            num_labels=answers.shape[0] if answers is not None else 42,
        )
    raise ValueError(f"unknown DG-SCT task {task!r}; expected one of {TASKS}")


# ------------------------------------------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------------------------------------------
def _model_class(task: str):
    from modeling.dg_sct import DgSctForAudioVisualQuestionAnswering

    return {"avqa": DgSctForAudioVisualQuestionAnswering}[task]


def _strip_data_parallel(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """`nn.DataParallel` checkpoints (AVQA's `avst.pt`) prefix every key with `module.`."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module."):]: value for key, value in state_dict.items()}
    return dict(state_dict)


def load_original_dg_sct_task(task: str, checkpoint, original_config: Mapping[str, Any] | str | Path | None = None):
    """Build the hf_av model of `task` from an original checkpoint (path or state dict) with strict accounting;
    returns `(model, report)`."""
    if task not in TASKS:
        raise ValueError(f"unknown DG-SCT task {task!r}; expected one of {TASKS}")
    state_dict = load_torch_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else dict(checkpoint)
    state_dict = _strip_data_parallel(state_dict)
    if isinstance(original_config, (str, Path)):
        original_config = json.loads(Path(original_config).read_text())
    if not any(k.startswith("swin.") for k in state_dict) or not any(k.startswith("htsat.") for k in state_dict):
        raise CheckpointConversionError(
            f"not a DG-SCT {task.upper()} checkpoint: expected keys under 'swin.' (Swin-V2) and 'htsat.' (HTS-AT)"
        )
    config = dg_sct_task_config_from_original(task, original_config, state_dict)
    model = _model_class(task)(config)
    converted, report = dg_sct_task_key_map(task).convert(state_dict, expected=model.state_dict())
    model.load_state_dict(converted, strict=True)
    model.eval()
    return model, report
