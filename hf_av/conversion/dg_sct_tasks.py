"""Original DG-SCT checkpoints of the other downstream tasks -> hf_av task heads.

The backbone part of every map (timm-0.6 Swin-V2 `swin.`, HTS-AT `htsat.`, the four DG-SCT module lists) is the AVE
converter's, imported from `hf_av.conversion.dg_sct`; this module adds each task head's rules:

* AVVP (`AVVP/nets/mgn.py` `MGN_Net`, plain state dict) -> `DgSctForAudioVisualVideoParsing`;
* AVS S4 (`AVS/avs_scripts/avs_s4/model/PVT_AVSModel.py` `Pred_endecoder`, plain state dict) ->
  `DgSctForAudioVisualSegmentation`;
* AVQA (`AVQA/net_grd_avst/net_avst.py` `AVQA_Fusion_Net`, saved from `nn.DataParallel`: every key starts with
  `module.`) -> `DgSctForAudioVisualQuestionAnswering`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointConversionError
from .dg_sct import _adapter_list_rules, _temporal_rules, dg_sct_config_from_original
from .htsat import htsat_key_map
from .timm_swinv2 import timm_swinv2_key_map
from .toolkit import KeyMap, drop, load_torch_checkpoint, rename

__all__ = [
    "TASKS",
    "convert_dg_sct_task_checkpoint",
    "dg_sct_task_config_from_original",
    "dg_sct_task_key_map",
    "load_original_dg_sct_task",
]

TASKS = ("avvp", "avqa", "avs")
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


_GROUPING_BLOCK_NAMES = {
    "norm_tokens": "norm_tokens",
    "mlp_inter.fc1": "token_mlp.fc1",
    "mlp_inter.fc2": "token_mlp.fc2",
    "norm_post_tokens": "norm_post_tokens",
    "norm_x": "norm_inputs",
    "pre_assign_attn.attn.q_proj": "cross_attention.q_proj",
    "pre_assign_attn.attn.k_proj": "cross_attention.k_proj",
    "pre_assign_attn.attn.v_proj": "cross_attention.v_proj",
    "pre_assign_attn.attn.proj": "cross_attention.proj",
    "pre_assign_attn.norm2": "cross_attention_norm",
    "pre_assign_attn.mlp.fc1": "cross_attention_mlp.fc1",
    "pre_assign_attn.mlp.fc2": "cross_attention_mlp.fc2",
    "pre_assign_attn.norm_post": "cross_attention_norm_post",
    "assign.q_proj": "assign_query",
    "assign.k_proj": "assign_key",
    "assign.v_proj": "assign_value",
    "assign.proj": "assign_proj",
    "norm_new_x": "norm_new_tokens",
    "mlp_channels.fc1": "channel_mlp.fc1",
    "mlp_channels.fc2": "channel_mlp.fc2",
}
_GROUPING_LAYER_NAMES = {
    "norm1": "layernorm_before",
    "attn.qkv": "attention.qkv",
    "attn.proj": "attention.proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def _avvp_head_rules() -> list:
    rules = [
        drop(
            r"(?:audio|vis)_adapter_blocks_p[12]\.\d+\.(?:fc_caption|temporal_gated\.0)\.(?:weight|bias)",
            "AVVP DG-SCT module caption projection / temporal gate: " + UNUSED,
        ),
        rename(r"audio_token", "parsing_head.audio_class_tokens"),
        rename(r"visual_token", "parsing_head.visual_class_tokens"),
    ]
    for source, target in (
        ("fc_a", "audio_projection"), ("fc_v", "visual_projection"), ("fc_st", "clip_projection"),
        ("fc_fusion", "fusion"), ("fc_prob", "audio_visual_classifier"), ("fc_prob_a", "audio_classifier"),
        ("fc_prob_v", "visual_classifier"), ("fc_cls", "class_token_classifier"),
    ):
        rules.append(_linear(source, f"parsing_head.{target}"))
    for source, target in (("audio_cug", "audio_grouping"), ("visual_cug", "visual_grouping"), ("av_mcg", "audio_visual_grouping")):
        for original, converted in _GROUPING_LAYER_NAMES.items():
            rules.append(
                rename(
                    rf"{source}\.blocks\.(\d+)\.{re.escape(original)}\.(weight|bias)",
                    rf"parsing_head.{target}.layers.\1.{converted}.\2",
                )
            )
        for block, converted_block in (("grouping", "grouping"), ("han_encoder", "cross_modal_grouping")):
            for original, converted in _GROUPING_BLOCK_NAMES.items():
                rules.append(_linear(f"{source}.{block}.{original}", f"parsing_head.{target}.{converted_block}.{converted}"))
    # The AVE temporal-attention rules, moved under the parsing head (the AVVP copy has no decoders / projections).
    rules += KeyMap(_temporal_rules()).with_prefixes("", "parsing_head.").rules
    return rules


_TEMPORAL_LAYER_NAMES = {"linear1": "intermediate", "linear2": "output", "norm1": "attention_norm", "norm2": "output_norm"}


def _avs_module_drops() -> list:
    """S4 DG-SCT module parts the S4 forward never runs (matched before the shared module rules)."""
    source = r"(?:audio|vis)_adapter_blocks_p[12]\.\d+\."
    return [
        drop(source + r"conv_adapter\.(?:weight|bias)", "S4 DG-SCT module token mixing: " + UNUSED + " (bicubic resize)"),
        drop(source + r"ln_before\.(?:weight|bias)", "S4 DG-SCT module LayerNorm before the bottleneck: " + UNUSED),
        drop(source + r"temporal_gated\.0\.(?:weight|bias)", "S4 DG-SCT module temporal gate: evaluated, result unused"),
    ]


def _avs_head_rules() -> list:
    head = "segmentation_head."
    branch = head + r"temporal_attention.branches.\1."
    rules = [
        drop(r"encoder_backbone\..*", "PVT-v2-b5 encoder: " + UNUSED),
        drop(r"conv[1-4]\.conv2d_list\.\d+\.(?:weight|bias)", "Classifier_Module heads: " + UNUSED),
        drop(r"x[1-4]_linear\.(?:weight|bias)", "unused multi-scale projections (the x*_linear_ ones are used)"),
        drop(r"temporal_attn\.(?:audio|video)_decoder\..*", "AVS temporal cross-modal decoders: evaluated, results unused"),
        drop(r"temporal_attn\.(?:audio|video)_encoder\.\d+\.encoder_layer\..*", "template layer besides its deep copies; never run"),
        _linear("audio_linear", head + "audio_projection"),
    ]
    for stage in range(4):
        rules.append(_linear(f"x{stage + 1}_linear_", f"{head}feature_projections.{stage}"))
        if stage == 3:  # the deepest decoder block runs without a skip input
            rules.append(drop(r"path4\.resConfUnit1\.conv[12]\.(?:weight|bias)", "decoder skip unit of the deepest block: " + UNUSED))
        rules.append(_linear(f"path{stage + 1}.resConfUnit1.conv1", f"{head}decoder_blocks.{stage}.skip_unit.conv1"))
        rules.append(_linear(f"path{stage + 1}.resConfUnit1.conv2", f"{head}decoder_blocks.{stage}.skip_unit.conv2"))
        rules.append(_linear(f"path{stage + 1}.resConfUnit2.conv1", f"{head}decoder_blocks.{stage}.output_unit.conv1"))
        rules.append(_linear(f"path{stage + 1}.resConfUnit2.conv2", f"{head}decoder_blocks.{stage}.output_unit.conv2"))
        fusion = f"{head}audio_visual_fusion.{stage}."
        for original, converted in (("align_channel", "audio_projection"), ("theta", "query"), ("phi", "key"),
                                    ("g", "value"), ("W_z.0", "output"), ("norm_layer", "layer_norm")):
            rules.append(_linear(f"tpavi_b{stage + 1}.{original}", fusion + converted))
        rules.append(
            rename(
                rf"tpavi_b{stage + 1}\.W_z\.1\.(weight|bias|running_mean|running_var|num_batches_tracked)",
                fusion + r"output_norm.\1",
            )
        )
    rules += [
        _linear("output_conv.0", head + "mask_conv1"),
        _linear("output_conv.2", head + "mask_conv2"),
        _linear("output_conv.4", head + "mask_classifier"),
        rename(r"temporal_attn\.v_fc\.(\d+)\.(weight|bias)", branch + r"visual_projection.\2"),
        rename(r"temporal_attn\.audio_visual_rnn_layer\.(\d+)\.(audio|visual)_rnn\.(\w+)", branch + r"\2_rnn.\3"),
        rename(r"temporal_attn\.audio_gated\.(\d+)\.0\.(weight|bias)", branch + r"audio_gate.\2"),
        rename(r"temporal_attn\.video_gated\.(\d+)\.0\.(weight|bias)", branch + r"visual_gate.\2"),
    ]
    for original, modality in (("video", "visual"), ("audio", "audio")):
        source = rf"temporal_attn\.{original}_encoder\.(\d+)\."
        target = branch + f"{modality}_encoder."
        rules.append(rename(source + r"affine_matrix\.(weight|bias)", target + r"input_projection.\2"))
        layer = source + r"encoder\.layers\.(\d+)\."
        rules.append(rename(layer + r"self_attn\.(in_proj_weight|in_proj_bias)", target + r"layers.\2.attention.\3"))
        rules.append(rename(layer + r"self_attn\.out_proj\.(weight|bias)", target + r"layers.\2.attention.out_proj.\3"))
        for original_name, name in _TEMPORAL_LAYER_NAMES.items():
            rules.append(rename(layer + original_name + r"\.(weight|bias)", target + rf"layers.\2.{name}.\3"))
    return rules


def dg_sct_task_key_map(task: str) -> KeyMap:
    """The whole original model of `task` -> its hf_av head class (keys without any `module.` prefix)."""
    if task == "avs":
        key_map = KeyMap(_avs_module_drops()) + _backbone_map() + KeyMap(_avs_head_rules())
        key_map.name = "DG-SCT AVS-S4 checkpoint"
        return key_map
    if task == "avvp":
        head = _avvp_head_rules()
    elif task == "avqa":
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
    from modeling.dg_sct import DgSctQuestionAnsweringConfig, DgSctSegmentationConfig, DgSctVideoParsingConfig

    original_config = dict(original_config or {})
    state_dict = dict(state_dict or {})
    kwargs = _backbone_kwargs(original_config, state_dict)
    if task == "avvp":
        heads = dict(original_config.get("heads", {}))
        opt = dict(original_config.get("opt", {}))
        width = state_dict["fc_a.weight"].shape[0] if "fc_a.weight" in state_dict else int(opt.get("dim", 128))
        gate = state_dict.get("temporal_attn.audio_gated.0.weight")
        hidden = gate.shape[1] if gate is not None else int(heads.get("ta_d_model", 64))
        feed_forward = state_dict.get("temporal_attn.audio_encoder.encoder.layers.0.linear1.weight")

        def depth(prefix):
            return len({k.split(".")[2] for k in state_dict if k.startswith(prefix + ".blocks.")}) or None

        classes = state_dict.get("fc_cls.weight")
        return DgSctVideoParsingConfig(
            **kwargs,
            latent_token_init="uniform",
            parsing_hidden_size=width,
            clip_feature_size=state_dict["fc_st.weight"].shape[1] if "fc_st.weight" in state_dict else 512,
            temporal_hidden_size=hidden,
            temporal_visual_dim=2 * hidden,
            temporal_intermediate_size=feed_forward.shape[0] if feed_forward is not None else int(heads.get("ta_ff", 1024)),
            audio_grouping_depth=depth("audio_cug") or int(opt.get("depth_aud", 3)),
            visual_grouping_depth=depth("visual_cug") or int(opt.get("depth_vis", 3)),
            audio_visual_grouping_depth=depth("av_mcg") or int(opt.get("depth_av", 6)),
            unimodal_assignment=str(opt.get("unimodal_assign", "soft")),
            crossmodal_assignment=str(opt.get("crossmodal_assign", "soft")),
            num_labels=classes.shape[0] if classes is not None else 25,
        )
    if task == "avs":
        gate = state_dict.get("temporal_attn.audio_gated.0.0.weight")
        hidden = gate.shape[1] if gate is not None else 256
        feed_forward = state_dict.get("temporal_attn.audio_encoder.0.encoder.layers.0.linear1.weight")
        stages = sorted(int(k.split(".")[0][len("tpavi_b"):]) - 1 for k in state_dict if k.endswith(".align_channel.weight"))
        mask_sizes = [state_dict[f"output_conv.{i}.weight"].shape[0] for i in (0, 2) if f"output_conv.{i}.weight" in state_dict]
        return DgSctSegmentationConfig(
            **{**kwargs, "adapter_layer_norm_before": False},  # built but never applied by the S4 modules
            decoder_channels=state_dict["x1_linear_.weight"].shape[0] if "x1_linear_.weight" in state_dict else 256,
            audio_feature_size=state_dict["audio_linear.weight"].shape[0] if "audio_linear.weight" in state_dict else 128,
            temporal_visual_fc_dim=(
                state_dict["temporal_attn.v_fc.0.weight"].shape[0] if "temporal_attn.v_fc.0.weight" in state_dict else 256
            ),
            temporal_hidden_size=hidden,
            temporal_visual_dim=2 * hidden,
            temporal_intermediate_size=feed_forward.shape[0] if feed_forward is not None else 1024,
            fusion_stages=stages or [0, 1, 2, 3],
            mask_head_sizes=mask_sizes or [128, 32],
        )
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
    from modeling.dg_sct import (
        DgSctForAudioVisualQuestionAnswering,
        DgSctForAudioVisualSegmentation,
        DgSctForAudioVisualVideoParsing,
    )

    return {
        "avqa": DgSctForAudioVisualQuestionAnswering,
        "avvp": DgSctForAudioVisualVideoParsing,
        "avs": DgSctForAudioVisualSegmentation,
    }[task]


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


# ------------------------------------------------------------------------------------------------------------------
# Output folder: weights, config, processor, model card
# ------------------------------------------------------------------------------------------------------------------
def _task_model_card(task: str, config, source_file: str, report):
    """The task's card (`hf_av.hub.dg_sct_task_cards`: the paper's numbers, usage, limits) with this conversion's
    key report."""
    from ..hub.dg_sct_task_cards import ConversionSummary, dg_sct_task_model_card

    conversion = ConversionSummary(
        source_file=str(source_file),
        num_source_keys=report.num_source_keys,
        num_target_keys=report.num_target_keys,
        dropped={reason: len(keys) for reason, keys in report.dropped_by_reason().items()},
    )
    return dg_sct_task_model_card(task, config, conversion)


def _save_task_processor(task: str, config, output_dir: Path, question_vocabulary=None) -> None:
    from ..processing.dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor
    from ..processing.dg_sct_tasks import (
        DgSctQuestionAnsweringProcessor,
        DgSctQuestionTokenizer,
        DgSctSegmentationImageProcessor,
        DgSctSegmentationProcessor,
        DgSctVideoParsingProcessor,
    )

    audio = config.audio_config
    tiling = {"num_segments": config.num_segments, "tile_repeats": 5 if task == "avs" else 10}
    extractor = DgSctFeatureExtractor(
        sampling_rate=audio.sampling_rate, n_fft=audio.n_fft, hop_length=audio.hop_length,
        num_mel_bins=audio.num_mel_bins, f_min=audio.f_min, f_max=audio.f_max, **tiling,
    )
    if task == "avs":
        DgSctSegmentationProcessor(extractor, DgSctSegmentationImageProcessor()).save_pretrained(output_dir)
        return
    size = config.vision_config.image_size
    size = size if isinstance(size, int) else size[0]
    images = DgSctImageProcessor(size={"height": size, "width": size})
    if task == "avqa" and question_vocabulary is not None:
        tokenizer = DgSctQuestionTokenizer(words=question_vocabulary)
        DgSctQuestionAnsweringProcessor(extractor, images, tokenizer).save_pretrained(output_dir)
        return
    if task == "avvp":
        DgSctVideoParsingProcessor(feature_extractor=extractor, image_processor=images).save_pretrained(output_dir)
        return
    DgSctProcessor(feature_extractor=extractor, image_processor=images).save_pretrained(output_dir)


def _read_vocabularies(path):
    """Question words and answers from the MUSIC-AVQA train json (`avqa-train.json`), as the original builds them."""
    from ..processing.dg_sct_tasks import build_question_vocabularies

    return build_question_vocabularies(json.loads(Path(path).read_text()))


def convert_dg_sct_task_checkpoint(
    task: str,
    checkpoint: str | Path,
    output_dir: str | Path,
    original_config: str | Path | Mapping[str, Any] | None = None,
    question_json: str | Path | None = None,
    write_model_card: bool = True,
) -> Path:
    """Convert an original AVVP / AVQA / AVS checkpoint into `output_dir` (safetensors, config, processor config,
    README.md), written atomically. AVQA: `question_json` (the MUSIC-AVQA train json the original builds its
    vocabularies from) adds the question tokenizer and the answer labels."""
    from ..hub.model_card import write_model_card as write_card
    from .toolkit import atomic_output_dir

    model, report = load_original_dg_sct_task(task, checkpoint, original_config)
    words = None
    if task == "avqa" and question_json is not None:
        words, answers = _read_vocabularies(question_json)
        if len(answers) != model.config.num_labels or len(words) != model.config.question_vocab_size:
            raise CheckpointConversionError(
                f"{question_json} gives {len(words)} question words and {len(answers)} answers; the checkpoint has "
                f"{model.config.question_vocab_size} and {model.config.num_labels}."
            )
        model.config.id2label = dict(enumerate(answers))
        model.config.label2id = {answer: index for index, answer in enumerate(answers)}
    with atomic_output_dir(output_dir) as staging:
        model.save_pretrained(staging)
        _save_task_processor(task, model.config, staging, words)
        if write_model_card:
            write_card(staging, _task_model_card(task, model.config, str(checkpoint), report))
    return Path(output_dir)
