"""VATT: original TensorFlow 2 checkpoints (google-research/vatt) -> hf_av `modeling.vatt` models.

The released checkpoints are TF2 object-based checkpoints (`ckpt-N.index` + `ckpt-N.data-*`) written by
`tf.train.Checkpoint(model=keras_model, optimizer=optimizer)`. Their weight keys are attribute paths:
`model/layer_with_weights-0/<path>/.ATTRIBUTES/VARIABLE_VALUE`. This module strips that wrapper, recognises the
checkpoint kind from the paths, builds the matching `VattConfig` (from the tensor shapes, or from the original
constructor arguments given as `--original-config`) and maps every variable with the toolkit's rules:

| original | hf_av |
|---|---|
| Dense kernel `[in, out]` | `Linear.weight` (transpose) |
| `voxel_to_patch` Conv3D `[t, h, w, 3, D]` | `Conv3d.weight` `[D, 3, t, h, w]` |
| `wave_to_patch` Conv1D `[128, 1, D]` | `Conv1d.weight` `[D, 1, 128]` |
| `mha/{q,k,v}` (separate Dense) | fused `attention.qkv` (concatenated q, k, v: the shared block's layout) |
| LayerNorm `gamma/beta`, T5 norm `weight` | `weight/bias`, `weight` |
| BatchNorm `gamma/beta/moving_mean/moving_variance` | `weight/bias/running_mean/running_var` |

Dropped on purpose: optimizer slots and state (`.OPTIMIZER_SLOT`, `optimizer/`), `save_counter`, the object graph.
`num_batches_tracked` of the BatchNorms does not exist in TF (PyTorch only reads it when `momentum=None`); it is
set to 0.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointConversionError
from .toolkit import (
    ConversionReport,
    KeyMap,
    atomic_output_dir,
    check_against_model,
    concat,
    drop,
    rename,
    tf_conv1d_kernel,
    tf_conv3d_kernel,
    transpose,
)

logger = logging.getLogger(__name__)

ORIGINAL_KINDS = ("tx_fac", "ut_fac", "video_cls", "audio_cls")

_MODEL_PREFIX = "model/layer_with_weights-0/"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_KIND_ROOTS = {
    "tx_fac": "_base_layer/vid_backbone/",
    "ut_fac": "_base_layer/unified_backbone/",
}
# Released full-size towers use d_kv = 64 per head: the head count is not stored, so it is width / 64.
_RELEASED_HEAD_WIDTH = 64

_NOT_MODEL_WEIGHTS = [
    drop(r".*\.OPTIMIZER_SLOT.*", "optimizer slot (Adam m/v or SGD momentum)"),
    drop(r"optimizer/.*", "optimizer state (iteration count, hyper-parameters)"),
    drop(r"save_counter/.*", "checkpoint save counter"),
    drop(r"_CHECKPOINTABLE_OBJECT_GRAPH", "TF object graph (structure only)"),
]


# ---------------------------------------------------------------------------------------------------------------------
# Key maps
# ---------------------------------------------------------------------------------------------------------------------
def _dense(source: str, target: str, bias: bool = True) -> list:
    rules = [rename(f"{source}/kernel", f"{target}.weight", transpose)]
    if bias:
        rules.append(rename(f"{source}/bias", f"{target}.bias"))
    return rules


def _layer_norm(source: str, target: str) -> list:
    return [rename(f"{source}/gamma", f"{target}.weight"), rename(f"{source}/beta", f"{target}.bias")]


def _batch_norm(source: str, target: str) -> list:
    return _layer_norm(source, target) + [
        rename(f"{source}/moving_mean", f"{target}.running_mean"),
        rename(f"{source}/moving_variance", f"{target}.running_var"),
    ]


def _transformer_rules(source: str, target: str) -> list:
    """`TransformerEncoder` (`tx`) of ViT / WaT / UT -> `VattEncoder` (shared `TransformerBlock` layers)."""
    layer, out = rf"{source}/layers/(\d+)", rf"{target}.layers.\1"
    return [
        *_layer_norm(f"{layer}/layer_norm", f"{out}.layernorm_before"),
        concat([f"{layer}/mha/{p}/kernel" for p in "qkv"], f"{out}.attention.qkv.weight", dim=0, transform=transpose),
        concat([f"{layer}/mha/{p}/bias" for p in "qkv"], f"{out}.attention.qkv.bias", dim=0),
        *_dense(f"{layer}/mha/o", f"{out}.attention.proj"),
        *_layer_norm(f"{layer}/feed_forward/layer_norm", f"{out}.layernorm_after"),
        *_dense(f"{layer}/feed_forward/mlp/wi", f"{out}.mlp.fc1"),
        *_dense(f"{layer}/feed_forward/mlp/wo", f"{out}.mlp.fc2"),
        *_layer_norm(f"{source}/final_layer_norm", f"{target}.layernorm"),
    ]


def _position_rules(source: str, target: str) -> list:
    return [
        rename(rf"{source}/(temporal|vertical|horizontal)_position_embeddings/embeddings",
               rf"{target}.\1_position_embeddings"),
        *_layer_norm(f"{source}/layernorm", f"{target}.layernorm"),
    ]


def _patch_tower_rules(source: str, target: str, modality: str) -> list:
    """ViTx3D (`modality="video"`) / AuTx1D WaT (`"audio"`) backbone -> embeddings, encoder, post-projection."""
    patch, conv = ("voxel_to_patch", tf_conv3d_kernel) if modality == "video" else ("wave_to_patch", tf_conv1d_kernel)
    embeddings = f"{target}{modality}_embeddings"
    return [
        rename(f"{source}/{patch}/kernel", f"{embeddings}.patch_embeddings.weight", conv),
        rename(f"{source}/{patch}/bias", f"{embeddings}.patch_embeddings.bias"),
        *_dense(f"{source}/pre_proj", f"{embeddings}.pre_projection.dense"),
        *_position_rules(f"{source}/pos_embedding_lookup", f"{embeddings}.position_embeddings"),
        rename(f"{source}/agg_embedding", f"{embeddings}.agg_embedding"),
        *_transformer_rules(f"{source}/tx", f"{target}{modality}_encoder"),
        *_dense(f"{source}/post_proj", f"{target}{modality}_post_projection.dense"),
    ]


def _t5_text_rules(source: str, target: str) -> list:
    """`LanguageModel` + `T5Encoder` (`txt_backbone`) -> `VattT5TextEmbeddings` + `VattT5Encoder`."""
    layer, out = rf"{source}/base_lm/layers/(\d+)", rf"{target}text_encoder.layers.\1"
    attention = f"{layer}/self_attention/attention"
    return [
        rename(f"{source}/embedding/embeddings", f"{target}text_embeddings.word_embeddings.weight"),
        rename(f"{source}/agg_embedding", f"{target}text_embeddings.agg_embedding"),
        *_dense(f"{source}/pre_proj", f"{target}text_embeddings.pre_projection.dense", bias=False),
        rename(f"{source}/base_lm/layers/0/self_attention/attention/relative_attention_bias/embeddings",
               f"{target}text_encoder.relative_attention_bias.weight"),
        rename(f"{layer}/self_attention/layer_norm/weight", f"{out}.attention_norm.weight"),
        concat([f"{attention}/{p}/kernel" for p in "qkv"], f"{out}.attention.qkv.weight", dim=0, transform=transpose),
        *_dense(f"{attention}/o", f"{out}.attention.proj", bias=False),
        *_layer_norm(f"{layer}/feed_forward/layer_norm", f"{out}.mlp_norm"),
        *_dense(f"{layer}/feed_forward/mlp/wi", f"{out}.mlp.fc1", bias=False),
        *_dense(f"{layer}/feed_forward/mlp/wo", f"{out}.mlp.fc2", bias=False),
        rename(f"{source}/base_lm/final_layer_norm/weight", f"{target}text_encoder.final_layer_norm.weight"),
    ]


def _unified_rules(source: str, target: str) -> list:
    """`UniversalVATT` (`unified_transformer`) -> per-modality embeddings / post-projections + one `encoder`."""
    names = {"video": "video", "audio": "audio", "text": "text"}
    agg = {"vid": "video", "aud": "audio", "txt": "text"}
    rules = [
        rename(f"{source}/raw_to_embeddings/video/kernel", f"{target}video_embeddings.patch_embeddings.weight",
               tf_conv3d_kernel),
        rename(f"{source}/raw_to_embeddings/audio/kernel", f"{target}audio_embeddings.patch_embeddings.weight",
               tf_conv1d_kernel),
        rename(f"{source}/raw_to_embeddings/(video|audio)/bias", rf"{target}\1_embeddings.patch_embeddings.bias"),
        rename(f"{source}/raw_to_embeddings/text/embeddings", f"{target}text_embeddings.word_embeddings.weight"),
        *_transformer_rules(f"{source}/tx", f"{target}encoder"),
    ]
    for original, modality in names.items():
        rules += _dense(f"{source}/pre_proj/{original}", f"{target}{modality}_embeddings.pre_projection.dense")
        rules += _dense(f"{source}/post_proj/{original}", f"{target}{modality}_post_projection.dense")
        rules += _position_rules(f"{source}/pos_embedding_lookup/{original}",
                                 f"{target}{modality}_embeddings.position_embeddings")
    for original, modality in agg.items():
        rules.append(rename(f"{source}/{original}_agg_embedding", f"{target}{modality}_embeddings.agg_embedding"))
    return rules


def _fac_head_rules(source: str, target: str) -> list:
    """`FACHead` (`mlp_fac`) -> the four common-space projections of `VattModel`."""
    return [
        *_dense(f"{source}/vid_to_hid", f"{target}video_audio_projection.dense_in", bias=False),
        *_batch_norm(f"{source}/hid_to_va/pre_bn", f"{target}video_audio_projection.norm_in"),
        *_dense(f"{source}/hid_to_va/dense", f"{target}video_audio_projection.dense_out", bias=False),
        *_batch_norm(f"{source}/hid_to_va/bn", f"{target}video_audio_projection.norm_out"),
        *_dense(f"{source}/va_to_vat/dense", f"{target}video_text_projection.dense", bias=False),
        *_batch_norm(f"{source}/va_to_vat/bn", f"{target}video_text_projection.norm"),
        *_dense(f"{source}/aud_to_va", f"{target}audio_projection"),
        *_dense(f"{source}/txt_to_vat", f"{target}text_projection"),
    ]


def key_map(kind: str) -> KeyMap:
    """Rules from the original attribute paths (wrapper stripped) to the hf_av model's state-dict keys."""
    if kind == "tx_fac":
        rules = [
            *_patch_tower_rules("_base_layer/vid_backbone/_base", "vatt.", "video"),
            *_patch_tower_rules("_base_layer/aud_backbone/_base", "vatt.", "audio"),
            *_t5_text_rules("_base_layer/txt_backbone", "vatt."),
            *_fac_head_rules("_head_layer/_bridge_heads/0", "vatt."),
        ]
    elif kind == "ut_fac":
        rules = [
            *_unified_rules("_base_layer/unified_backbone/unified_transformer", "vatt."),
            *_fac_head_rules("_head_layer/_bridge_heads/0", "vatt."),
        ]
    elif kind in ("video_cls", "audio_cls"):
        rules = [
            *_patch_tower_rules("_base", "vatt.", "video" if kind == "video_cls" else "audio"),
            *_dense("_ops/cls", "classifier"),
        ]
    else:
        raise CheckpointConversionError(f"unknown VATT checkpoint kind {kind!r}; expected one of {ORIGINAL_KINDS}")
    return KeyMap([*_NOT_MODEL_WEIGHTS, *rules], name=f"VATT {kind} checkpoint")


# ---------------------------------------------------------------------------------------------------------------------
# Reading and recognising checkpoints
# ---------------------------------------------------------------------------------------------------------------------
def read_checkpoint(prefix: str | Path) -> tuple[dict[str, np.ndarray], ConversionReport]:
    """Model variables of a TF2 checkpoint `PATH/ckpt-N` as `{attribute path: array}` (wrapper stripped), read with
    the toolkit's tensor-bundle reader, and its report of the entries left out (optimizer slots and state, save
    counter, object graph)."""
    from .tf_checkpoint import load_tf_checkpoint

    variables, report = load_tf_checkpoint(prefix)
    return strip_variable_names(variables), report


def strip_variable_names(variables: dict[str, Any]) -> dict[str, Any]:
    """`model/layer_with_weights-0/<path>[/.ATTRIBUTES/VARIABLE_VALUE]` -> `<path>`; other keys stay as they are
    (the key map drops optimizer slots and bookkeeping by name, and names anything else as unknown)."""
    stripped = {}
    for key, value in variables.items():
        name = key
        if name.startswith(_MODEL_PREFIX) and ".OPTIMIZER_SLOT" not in name:
            name = name[len(_MODEL_PREFIX):]
            if name.endswith(_VALUE_SUFFIX):
                name = name[: -len(_VALUE_SUFFIX)]
        stripped[name] = value
    return stripped


def infer_original_kind(variables: dict[str, Any]) -> str:
    """`tx_fac`, `ut_fac`, `video_cls` or `audio_cls` from the attribute paths; a clear error for anything else."""
    keys = [k for k in variables if not k.startswith(("optimizer/", "save_counter/", "_CHECKPOINTABLE"))]
    if any(k.startswith(_KIND_ROOTS["ut_fac"]) for k in keys):
        return "ut_fac"
    if any(k.startswith(_KIND_ROOTS["tx_fac"]) for k in keys):
        return "tx_fac"
    if any(k.startswith("_ops/cls/") for k in keys):
        if any(k.startswith("_base/voxel_to_patch/") for k in keys):
            return "video_cls"
        if any(k.startswith("_base/wave_to_patch/") for k in keys):
            return "audio_cls"
    sample = ", ".join(sorted(keys)[:5]) or "(no model variables)"
    raise CheckpointConversionError(
        "this is not a VATT checkpoint: expected the attribute paths of a VATT model "
        "(model/layer_with_weights-0/_base_layer/vid_backbone/... for tx_fac, .../unified_backbone/... for ut_fac, "
        f"_base/voxel_to_patch + _ops/cls for a video classifier, _base/wave_to_patch + _ops/cls for audio); found "
        f"{sample}"
    )


# ---------------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------------
def _shape(variables: dict[str, Any], key: str) -> tuple[int, ...]:
    if key not in variables:
        raise CheckpointConversionError(f"VATT checkpoint lacks the variable {key!r} needed to infer the architecture")
    return tuple(variables[key].shape)


def _count_layers(variables: dict[str, Any], layers_prefix: str) -> int:
    pattern = re.compile(re.escape(layers_prefix) + r"/(\d+)/")
    indices = {int(m.group(1)) for k in variables if (m := pattern.match(k))}
    if not indices:
        raise CheckpointConversionError(f"no Transformer layers under {layers_prefix!r} in this checkpoint")
    return max(indices) + 1


def _heads(width: int) -> int:
    if width % _RELEASED_HEAD_WIDTH:
        raise CheckpointConversionError(
            f"cannot infer the number of attention heads of a {width}-wide tower (released VATT towers use 64 "
            "dimensions per head); pass --original-config with num_heads"
        )
    return width // _RELEASED_HEAD_WIDTH


def _tower_kwargs_from_shapes(variables: dict[str, Any], source: str, modality: str) -> dict[str, Any]:
    prefix = "video" if modality == "video" else "audio"
    layers = f"{source}/tx/layers"
    width = _shape(variables, f"{layers}/0/mha/q/kernel")[0]
    kwargs = {
        f"{prefix}_hidden_size": width,
        f"{prefix}_num_hidden_layers": _count_layers(variables, layers),
        f"{prefix}_num_attention_heads": _heads(width),
        f"{prefix}_intermediate_size": _shape(variables, f"{layers}/0/feed_forward/mlp/wi/kernel")[1],
    }
    position = f"{source}/pos_embedding_lookup"
    if modality == "video":
        patch_t, patch_h, patch_w = _shape(variables, f"{source}/voxel_to_patch/kernel")[:3]
        buckets_t = _shape(variables, f"{position}/temporal_position_embeddings/embeddings")[0]
        buckets_h = _shape(variables, f"{position}/vertical_position_embeddings/embeddings")[0]
        kwargs.update(video_temporal_patch_size=patch_t, video_spatial_patch_size=patch_h,
                      video_num_frames=buckets_t * patch_t, video_image_size=buckets_h * patch_h)
    else:
        patch = _shape(variables, f"{source}/wave_to_patch/kernel")[0]
        buckets = _shape(variables, f"{position}/temporal_position_embeddings/embeddings")[0]
        kwargs.update(audio_patch_size=patch, audio_num_samples=buckets * patch)
    kwargs[f"{prefix}_pre_projection"] = f"{source}/pre_proj/kernel" in variables
    if f"{source}/post_proj/kernel" in variables:
        kwargs[f"{prefix}_post_projection_size"] = _shape(variables, f"{source}/post_proj/kernel")[1]
    return kwargs


def _head_kwargs_from_shapes(variables: dict[str, Any]) -> dict[str, Any]:
    head = "_head_layer/_bridge_heads/0"
    return {
        "video_audio_projection_size": _shape(variables, f"{head}/vid_to_hid/kernel")[1],
        "video_text_projection_size": _shape(variables, f"{head}/va_to_vat/dense/kernel")[1],
    }


def infer_config_kwargs(variables: dict[str, Any], kind: str) -> dict[str, Any]:
    """`VattConfig` arguments from the tensor shapes of a released (full-size) checkpoint."""
    if kind == "tx_fac":
        text = "_base_layer/txt_backbone"
        vocab, embedding = _shape(variables, f"{text}/embedding/embeddings")
        width = _shape(variables, f"{text}/pre_proj/kernel")[1]
        return {
            **_tower_kwargs_from_shapes(variables, "_base_layer/vid_backbone/_base", "video"),
            **_tower_kwargs_from_shapes(variables, "_base_layer/aud_backbone/_base", "audio"),
            "text_vocab_size": vocab,
            "text_embedding_size": embedding,
            "text_hidden_size": width,
            "text_num_hidden_layers": _count_layers(variables, f"{text}/base_lm/layers"),
            "text_num_attention_heads": _shape(
                variables, f"{text}/base_lm/layers/0/self_attention/attention/relative_attention_bias/embeddings")[1],
            "text_relative_attention_num_buckets": _shape(
                variables, f"{text}/base_lm/layers/0/self_attention/attention/relative_attention_bias/embeddings")[0],
            "text_intermediate_size": _shape(variables, f"{text}/base_lm/layers/0/feed_forward/mlp/wi/kernel")[1],
            **_head_kwargs_from_shapes(variables),
        }
    if kind == "ut_fac":
        root = "_base_layer/unified_backbone/unified_transformer"
        width = _shape(variables, f"{root}/pre_proj/video/kernel")[1]
        patch_t, patch_s = _shape(variables, f"{root}/raw_to_embeddings/video/kernel")[:2]
        audio_patch = _shape(variables, f"{root}/raw_to_embeddings/audio/kernel")[0]
        position = f"{root}/pos_embedding_lookup"

        def table(modality: str, axis: str) -> int:
            return _shape(variables, f"{position}/{modality}/{axis}_position_embeddings/embeddings")[0]

        vocab, embedding = _shape(variables, f"{root}/raw_to_embeddings/text/embeddings")
        return {
            "backbone_type": "modality_agnostic",
            "shared_hidden_size": width,
            "shared_num_hidden_layers": _count_layers(variables, f"{root}/tx/layers"),
            "shared_num_attention_heads": _heads(width),
            "shared_intermediate_size": _shape(variables, f"{root}/tx/layers/0/feed_forward/mlp/wi/kernel")[1],
            "shared_post_projection_size": _shape(variables, f"{root}/post_proj/video/kernel")[1],
            "video_temporal_patch_size": patch_t,
            "video_spatial_patch_size": patch_s,
            "video_num_frames": patch_t * table("video", "temporal"),
            "video_image_size": patch_s * table("video", "vertical"),
            "audio_patch_size": audio_patch,
            "audio_num_samples": audio_patch * table("audio", "temporal"),
            "text_vocab_size": vocab,
            "text_embedding_size": embedding,
            "text_max_length": table("text", "temporal"),
            **_head_kwargs_from_shapes(variables),
        }
    modality = "video" if kind == "video_cls" else "audio"
    return {
        "modalities": ["visual" if modality == "video" else "audio"],
        **_tower_kwargs_from_shapes(variables, "_base", modality),
        "num_labels": _shape(variables, "_ops/cls/kernel")[1],
    }


# Original size presets (configs/video.py, audio.py, text.py, unified.py) in the original's argument names.
_ORIGINAL_SIZES = {
    "vit_base": {"d_model": 768, "num_layers": 12, "num_heads": 12, "d_ff": 3072},
    "vit_medium": {"d_model": 1024, "num_layers": 12, "num_heads": 16, "d_ff": 4096},
    "vit_large": {"d_model": 1024, "num_layers": 24, "num_heads": 16, "d_ff": 4096},
    "vit_xlarge": {"d_model": 1536, "num_layers": 24, "num_heads": 24, "d_ff": 4096},
    "wat_base": {"d_model": 768, "num_layers": 12, "num_heads": 12, "d_ff": 3072},
    "wat_medium": {"d_model": 1024, "num_layers": 12, "num_heads": 16, "d_ff": 4096},
    "wat_large": {"d_model": 1024, "num_layers": 24, "num_heads": 16, "d_ff": 4096},
    "t5_small": {"d_model": 512, "num_layers": 6, "num_heads": 8, "d_ff": 2048, "d_pre_proj": 512},
    "t5_base": {"d_model": 768, "num_layers": 12, "num_heads": 12, "d_ff": 3072, "d_pre_proj": 768},
    "ut_base": {"d_model": 768, "num_layers": 12, "num_heads": 12, "d_ff": 3072},
    "ut_medium": {"d_model": 1024, "num_layers": 12, "num_heads": 16, "d_ff": 4096},
    "ut_large": {"d_model": 1024, "num_layers": 24, "num_heads": 16, "d_ff": 4096},
}
_VIT_DEFAULTS = {"temporal_patch_size": 4, "spatial_patch_size": 16, "max_temporal_buckets": 8,
                 "max_vertical_buckets": 14, "max_horizontal_buckets": 14, "pre_projection": False,
                 "post_projection": False, "d_post_proj": 1024}
_WAT_DEFAULTS = {"temporal_patch_size": 128, "temporal_patch_stride": 128, "max_temporal_buckets": 1200,
                 "pre_projection": False, "post_projection": False, "d_post_proj": 1024}
_T5_DEFAULTS = {"d_embedding": 300, "vocab_size": 2**16, "num_relative_buckets": 32, "max_relative_distance": 64}
_UT_DEFAULTS = {"vid_temporal_patch_size": 4, "vid_spatial_patch_size": 16, "aud_temporal_patch_size": 128,
                "txt_vocab_size": 2**16, "txt_embedding_dim": 300, "max_vid_temporal_buckets": 8,
                "max_vid_spatial_buckets": 14, "max_aud_temporal_buckets": 1200, "max_txt_temporal_buckets": 16,
                "d_post_proj": 1024}


def _original_params(name: str, defaults: dict, overrides: dict | None) -> dict:
    if name not in _ORIGINAL_SIZES:
        raise CheckpointConversionError(f"unknown original backbone {name!r}; known: {sorted(_ORIGINAL_SIZES)}")
    params = {**defaults, **_ORIGINAL_SIZES[name], **(overrides or {})}
    d_kv = params.get("d_kv")
    if d_kv is not None and d_kv * params["num_heads"] != params["d_model"]:
        raise CheckpointConversionError(
            f"{name}: d_kv ({d_kv}) x num_heads ({params['num_heads']}) != d_model ({params['d_model']}); hf_av's "
            "attention needs heads x head width = model width (true for every released VATT)"
        )
    return params


def _tower_kwargs_from_original(name: str, overrides: dict | None, modality: str) -> dict[str, Any]:
    prefix = "video" if modality == "video" else "audio"
    params = _original_params(name, _VIT_DEFAULTS if modality == "video" else _WAT_DEFAULTS, overrides)
    kwargs = {
        f"{prefix}_hidden_size": params["d_model"],
        f"{prefix}_num_hidden_layers": params["num_layers"],
        f"{prefix}_num_attention_heads": params["num_heads"],
        f"{prefix}_intermediate_size": params["d_ff"],
        f"{prefix}_pre_projection": bool(params["pre_projection"]),
        f"{prefix}_post_projection_size": params["d_post_proj"] if params["post_projection"] else None,
    }
    if modality == "video":
        if params["max_vertical_buckets"] != params["max_horizontal_buckets"]:
            raise CheckpointConversionError("hf_av's VATT assumes square frames (vertical == horizontal buckets)")
        kwargs.update(
            video_temporal_patch_size=params["temporal_patch_size"],
            video_spatial_patch_size=params["spatial_patch_size"],
            video_num_frames=params["max_temporal_buckets"] * params["temporal_patch_size"],
            video_image_size=params["max_vertical_buckets"] * params["spatial_patch_size"],
        )
    else:
        if params["temporal_patch_stride"] != params["temporal_patch_size"]:
            raise CheckpointConversionError("hf_av's WaT tokenizer assumes stride == patch size (as released)")
        kwargs.update(audio_patch_size=params["temporal_patch_size"],
                      audio_num_samples=params["max_temporal_buckets"] * params["temporal_patch_size"])
    if "num_classes" in params:
        kwargs["num_labels"] = params["num_classes"]
    return kwargs


def _head_kwargs_from_original(head: dict | None) -> dict[str, Any]:
    head = head or {}
    kwargs = {
        "video_audio_projection_size": head.get("d_va", 512),
        "video_text_projection_size": head.get("d_vt", 256),
        "batch_norm_eps": head.get("bn_epsilon", 1e-5),
    }
    if "bn_momentum" in head:  # TF momentum m keeps m of the old statistics; PyTorch's momentum is 1 - m
        kwargs["batch_norm_momentum"] = round(1.0 - head["bn_momentum"], 10)
    return kwargs


def config_kwargs_from_original_config(original: dict, kind: str) -> dict[str, Any]:
    """`VattConfig` arguments from one model entry of an original-config JSON (layout of
    `tests/fixtures/vatt/config.json`: backbone names + overrides in the original's argument names)."""
    if kind == "tx_fac":
        text = _original_params(original.get("text_backbone", "t5_small"), _T5_DEFAULTS, original.get("text_overrides"))
        if text.get("d_pre_proj", text["d_model"]) != text["d_model"]:
            raise CheckpointConversionError("the T5 text tower needs d_pre_proj == d_model (as released)")
        return {
            **_tower_kwargs_from_original(original.get("video_backbone", "vit_base"), original.get("video_overrides"),
                                          "video"),
            **_tower_kwargs_from_original(original.get("audio_backbone", "wat_base"), original.get("audio_overrides"),
                                          "audio"),
            "text_vocab_size": text["vocab_size"],
            "text_embedding_size": text["d_embedding"],
            "text_hidden_size": text["d_model"],
            "text_num_hidden_layers": text["num_layers"],
            "text_num_attention_heads": text["num_heads"],
            "text_intermediate_size": text["d_ff"],
            "text_relative_attention_num_buckets": text["num_relative_buckets"],
            "text_relative_attention_max_distance": text["max_relative_distance"],
            **_head_kwargs_from_original(original.get("head")),
        }
    if kind == "ut_fac":
        params = _original_params(original.get("unified_backbone", "ut_medium"), _UT_DEFAULTS,
                                  original.get("unified_overrides"))
        return {
            "backbone_type": "modality_agnostic",
            "shared_hidden_size": params["d_model"],
            "shared_num_hidden_layers": params["num_layers"],
            "shared_num_attention_heads": params["num_heads"],
            "shared_intermediate_size": params["d_ff"],
            "shared_post_projection_size": params["d_post_proj"],
            "video_temporal_patch_size": params["vid_temporal_patch_size"],
            "video_spatial_patch_size": params["vid_spatial_patch_size"],
            "video_num_frames": params["max_vid_temporal_buckets"] * params["vid_temporal_patch_size"],
            "video_image_size": params["max_vid_spatial_buckets"] * params["vid_spatial_patch_size"],
            "audio_patch_size": params["aud_temporal_patch_size"],
            "audio_num_samples": params["max_aud_temporal_buckets"] * params["aud_temporal_patch_size"],
            "text_vocab_size": params["txt_vocab_size"],
            "text_embedding_size": params["txt_embedding_dim"],
            "text_max_length": params["max_txt_temporal_buckets"],
            **_head_kwargs_from_original(original.get("head")),
        }
    modality = "video" if kind == "video_cls" else "audio"
    name = original.get("backbone")
    if name is None:  # the fixture layout names the backbone inside `model_arch`, e.g. "... 'vit_base' + overrides"
        found = re.search(r"'(\w+)'", original.get("model_arch", ""))
        name = found.group(1) if found else ("vit_base" if modality == "video" else "wat_base")
    return {
        "modalities": ["visual" if modality == "video" else "audio"],
        **_tower_kwargs_from_original(name, original.get("overrides"), modality),
    }


def _select_original_entry(original_config: dict, kind: str, original_model: str | None) -> dict:
    models = original_config.get("models")
    if models is None:
        return original_config  # one model's arguments directly
    key = original_model or kind
    if key not in models:
        raise CheckpointConversionError(
            f"--original-config has no entry {key!r} under 'models' (has {sorted(models)}); pass --original-model"
        )
    return models[key]


def build_config(variables: dict[str, Any], kind: str, original_config: dict | None = None,
                 original_model: str | None = None):
    """The `VattConfig` for a checkpoint: from `original_config` when given, else inferred from the shapes."""
    from modeling.vatt import VattConfig

    if original_config is not None:
        kwargs = config_kwargs_from_original_config(_select_original_entry(original_config, kind, original_model), kind)
    else:
        kwargs = infer_config_kwargs(variables, kind)
    if kind in ("tx_fac", "ut_fac") and "num_labels" not in kwargs:
        kwargs.setdefault("modalities", ["visual", "audio", "text"])
    try:
        return VattConfig(**kwargs)
    except Exception as error:  # @strict raises its own error class around the ValueError
        raise CheckpointConversionError(f"invalid VATT configuration for this checkpoint: {error}") from error


# ---------------------------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------------------------
_MODEL_CLASS_NAMES = {
    "tx_fac": "VattForPreTraining",
    "ut_fac": "VattForPreTraining",
    "video_cls": "VattForVideoClassification",
    "audio_cls": "VattForAudioClassification",
}


def convert_variables(variables: dict[str, Any], kind: str, model) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Map stripped checkpoint variables onto `model`'s state dict (strict: every key mapped or dropped, every model
    key produced with the model's shape). BatchNorm `num_batches_tracked` (no TF counterpart) is filled with 0."""
    expected = model.state_dict()
    converted, report = key_map(kind).convert(variables)
    for name, value in expected.items():
        if name.endswith("num_batches_tracked") and name not in converted:
            converted[name] = torch.zeros_like(value)
    converted = {name: tensor.to(torch.float32) if tensor.is_floating_point() else tensor
                 for name, tensor in converted.items()}
    check_against_model(converted, expected, what=report.name)
    return converted, report


def load_original_model(
    checkpoint: str | Path | dict[str, Any],
    original_config: dict | str | Path | None = None,
    original_model: str | None = None,
):
    """Build the hf_av model for an original checkpoint (`PATH/ckpt-N`, or already-read variables) and load its
    weights strictly (fp32, eval mode). Returns `(model, kind, report)`."""
    import modeling.vatt as vatt_modeling

    if isinstance(checkpoint, dict):
        variables, read_report = strip_variable_names(checkpoint), ConversionReport("variables")
    else:
        variables, read_report = read_checkpoint(checkpoint)
    kind = infer_original_kind(variables)
    if original_model is not None:
        if original_model not in ORIGINAL_KINDS:
            raise CheckpointConversionError(f"--original-model must be one of {ORIGINAL_KINDS}, got {original_model!r}")
        if original_model != kind:
            raise CheckpointConversionError(
                f"--original-model {original_model} given, but the checkpoint's variables are those of a {kind} model"
            )
    if isinstance(original_config, (str, Path)):
        try:
            original_config = json.loads(Path(original_config).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointConversionError(f"cannot read --original-config {original_config}: {error}") from error
    config = build_config(variables, kind, original_config, original_model)
    model = getattr(vatt_modeling, _MODEL_CLASS_NAMES[kind])(config)
    converted, report = convert_variables(variables, kind, model)
    model.load_state_dict(converted, strict=True)
    model.eval()
    return model, kind, read_report.merge(report)


def processor_for_config(config, vocab_file: str | Path | None = None):
    """A `VattProcessor` whose clip length, frame size, waveform length and text length follow `config` (the
    vocabulary only when given: it is not in the checkpoints, it ships in the original `misc_data.tgz` as
    `howto100m_en.txt`)."""
    from ..processing.vatt import VattFeatureExtractor, VattProcessor, VattTokenizer, VattVideoProcessor

    return VattProcessor(
        feature_extractor=VattFeatureExtractor(num_samples=config.audio_num_samples),
        video_processor=VattVideoProcessor(
            num_frames=config.video_num_frames, min_resize=config.video_image_size, crop_size=config.video_image_size
        ),
        tokenizer=VattTokenizer(vocab_file=str(vocab_file) if vocab_file else None, max_length=config.text_max_length),
    )


_USAGE = {
    "VattForPreTraining": (
        "```python\nimport hf_av\nfrom transformers import AutoModel, AutoProcessor\n\n"
        "model = AutoModel.from_pretrained(\"path/to/this/folder\")  # VattModel\n"
        "processor = AutoProcessor.from_pretrained(\"path/to/this/folder\")\n"
        "inputs = processor(videos=\"clip.mp4\", text=[\"a narration\"], return_tensors=\"pt\")\n"
        "out = model(pixel_values=inputs[\"pixel_values\"], input_values=inputs[\"input_values\"],\n"
        "            input_ids=inputs[\"input_ids\"])\n"
        "out.logits_per_video_audio, out.logits_per_video_text  # retrieval in the common spaces\n```\n"
        "`VattForPreTraining.from_pretrained(...)` continues pre-training (NCE video-audio + MIL-NCE video-text)."
    ),
    "VattForVideoClassification": (
        "```python\nimport hf_av\nfrom hf_av import VattForVideoClassification, VattProcessor\n\n"
        "model = VattForVideoClassification.from_pretrained(\"path/to/this/folder\")\n"
        "processor = VattProcessor.from_pretrained(\"path/to/this/folder\", num_test_clips=4, multi_crop=True)\n"
        "inputs = processor(videos=\"clip.mp4\", return_tensors=\"pt\")  # [B, 12 views, 32, 3, 224, 224]\n"
        "probabilities = model(pixel_values=inputs[\"pixel_values\"]).probabilities  # logits averaged over views\n```"
    ),
    "VattForAudioClassification": (
        "```python\nimport hf_av\nfrom hf_av import VattForAudioClassification, VattProcessor\n\n"
        "model = VattForAudioClassification.from_pretrained(\"path/to/this/folder\")\n"
        "processor = VattProcessor.from_pretrained(\"path/to/this/folder\")\n"
        "inputs = processor(videos=\"clip.mp4\", return_tensors=\"pt\")  # input_values [B, windows, 153600]\n"
        "probabilities = model(input_values=inputs[\"input_values\"]).probabilities  # sigmoid, multi-label\n```"
    ),
}


def vatt_model_card(config, source_file: str, checkpoint=None, model_class_name: str = "", report=None):
    """Card of a converted VATT checkpoint (the family row's `card_builder`); `report`: the conversion's
    `ConversionReport`, whose dropped variables the card lists."""
    from ..families import get_family
    from ..hub.model_card import ModelCardContent, family_sections

    facts = get_family("vatt").card
    model_class_name = model_class_name or "VattForPreTraining"
    kind = {"VattForVideoClassification": "video_cls", "VattForAudioClassification": "audio_cls"}.get(
        model_class_name, "ut_fac" if config.is_modality_agnostic else "tx_fac")
    family = "modality-agnostic (one Transformer shared by all modalities)" if config.is_modality_agnostic else \
        "modality-specific"
    dropped = "- nothing"
    if report is not None:
        dropped = "\n".join(f"  - {reason}: {len(keys)} entries" for reason, keys in report.dropped_by_reason().items())
    return ModelCardContent(
        model_name=getattr(checkpoint, "name", None) or f"VATT ({Path(source_file).name}, {kind})",
        summary=(
            f"VATT ({facts.paper_title}, {facts.authors_venue}, {facts.paper}) for the `hf_av` package: "
            f"{family} towers for {', '.join(config.modalities)}, converted from the original TensorFlow 2 "
            f"checkpoint. Class: `{model_class_name}`."
        ),
        license=facts.license,
        pipeline_tag={"video_cls": "video-classification", "audio_cls": "audio-classification"}.get(
            kind, "feature-extraction"),
        tags=list(facts.tags),
        sections={
            "Usage": _USAGE[model_class_name],
            "Provenance": (
                f"- Converted from `{source_file}` (original code: {facts.original_repository}) with "
                "`conversion_scripts/convert_vatt_tf_to_hf.py`: every model variable mapped (Dense kernels "
                "transposed, Conv3D/Conv1D kernels permuted, q/k/v fused, BatchNorm moving statistics kept), strict "
                "load. Parity with the original TF code is tested on tiny checkpoints it saved (fp32, max abs diff "
                f"<= 1e-5).\n- Left out on purpose:\n{dropped}\n"
                "- The text vocabulary (`howto100m_en.txt`) is not part of the checkpoint; load it with "
                "`VattTokenizer(vocab_file=...)` (or convert with `--vocab-file`)."
            ),
            **family_sections(facts),
        },
    )


def convert_vatt_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    original_config: dict | str | Path | None = None,
    original_model: str | None = None,
    vocab_file: str | Path | None = None,
    write_model_card: bool = True,
) -> Path:
    """Convert one original checkpoint `PATH/ckpt-N` into `output_dir` (safetensors weights, config, processor,
    README.md). The folder is written atomically: on any error nothing is left at `output_dir`."""
    from ..hub.model_card import write_model_card as write_card

    model, kind, report = load_original_model(checkpoint, original_config, original_model)
    logger.info("%s", report.format())
    output_dir = Path(output_dir)
    with atomic_output_dir(output_dir) as staging:
        model.save_pretrained(staging)
        processor_for_config(model.config, vocab_file).save_pretrained(staging)
        if write_model_card:
            write_card(staging, vatt_model_card(model.config, str(checkpoint), None, type(model).__name__, report))
    return output_dir


__all__ = [
    "ORIGINAL_KINDS",
    "build_config",
    "config_kwargs_from_original_config",
    "convert_variables",
    "convert_vatt_checkpoint",
    "infer_config_kwargs",
    "infer_original_kind",
    "key_map",
    "load_original_model",
    "processor_for_config",
    "read_checkpoint",
    "vatt_model_card",
    "strip_variable_names",
]
