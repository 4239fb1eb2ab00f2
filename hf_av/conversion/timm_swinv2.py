"""timm-0.6 Swin-V2 -> Transformers `Swinv2Model` key map (shared by the LAVisH and DG-SCT converters).

LAVisH (timm 0.6.7) and DG-SCT (timm 0.6.12) keep a ``timm.models.swin_transformer_v2.SwinTransformerV2`` as their
frozen visual backbone under a prefix (``swin.`` in both released AVE models). The map, per block
``layers.{i}.blocks.{j}``:

=========================================  ================================================================
timm 0.6                                   Transformers ``Swinv2Model``
=========================================  ================================================================
``patch_embed.proj.*`` / ``.norm.*``       ``embeddings.patch_embeddings.projection.*`` / ``embeddings.norm.*``
``attn.qkv.weight`` ``[3C, C]``            ``attention.self.{query,key,value}.weight`` (split in this order)
``attn.q_bias`` / ``attn.v_bias``          ``attention.self.query.bias`` / ``.value.bias`` (key has no bias)
``attn.logit_scale``                       ``attention.self.logit_scale``
``attn.cpb_mlp.{0,2}.*``                   ``attention.self.continuous_position_bias_mlp.{0,2}.*``
``attn.proj.*``                            ``attention.output.dense.*``
``norm1.*`` (post-norm after attention)    ``layernorm_before.*`` (Transformers applies it to the attention output)
``norm2.*`` (post-norm after the MLP)      ``layernorm_after.*``
``mlp.fc1.*`` / ``mlp.fc2.*``              ``intermediate.dense.*`` / ``output.dense.*``
``layers.{i}.downsample.*``                ``encoder.layers.{i}.downsample.*`` (both: reduction, then norm)
``norm.*``                                 ``layernorm.*``
=========================================  ================================================================

Dropped with reasons: ``relative_position_index`` / ``relative_coords_table`` (buffers Transformers recomputes from
the window size), ``attn_mask`` (shifted-window mask, recomputed per input size), ``head.*`` (the backbone's own
ImageNet classifier, unused by the audio-visual models).

Semantics checked against timm 0.6.7's source and numerically: tests/conversion/test_timm_swinv2.py loads the
mapped weights of two tiny backbones run by the original timm 0.6.7 code into `Swinv2Model` and matches the
embeddings, every stage before and after patch merging (<= 3e-5 / 1e-5 abs) and the final norm (<= 1e-5 abs).
What agrees without any switch: patch merging concatenates ``[x(0::2,0::2), x(1::2,0::2), x(0::2,1::2),
x(1::2,1::2)]`` and applies reduction, then norm, in both; the logit scale is clamped at ``log(100)`` in both; the
continuous position bias table is log-spaced and squashed by ``16 * sigmoid`` in both; a stage whose resolution is
<= the window uses the resolution as window and no shift in both, decided at construction from the configured image
size (``img_size`` / ``image_size``). What needs the config: ``pretrained_window_sizes`` (non-zero values change the
bias table's normalisation; `swinv2_config_kwargs` carries them over -- the released LAVisH / DG-SCT backbone
``swinv2_large_window12_192_22k`` uses zeros). Difference without effect on the originals' inputs: timm 0.6 asserts
input sizes divisible by patch and window, Transformers pads instead.

Example::

    from transformers import Swinv2Config, Swinv2Model
    from hf_av.conversion.timm_swinv2 import swinv2_config_kwargs, timm_swinv2_key_map
    from hf_av.conversion.toolkit import load_torch_checkpoint

    state_dict = load_torch_checkpoint("lavish_ave.pth")
    backbone = Swinv2Model(Swinv2Config(**swinv2_config_kwargs(img_size=192, window_size=12, embed_dim=192,
                                                               depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48])))
    key_map = timm_swinv2_key_map(source_prefix="swin.", target_prefix="")
    backbone_keys = {k: v for k, v in state_dict.items() if k.startswith("swin.")}
    converted, report = key_map.convert(backbone_keys, expected=backbone.state_dict())

In a family converter, add the family's own rules: ``timm_swinv2_key_map("swin.", "visual_encoder.") + KeyMap([...])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .toolkit import KeyMap, Rule, drop, rename, split

__all__ = ["swinv2_config_kwargs", "timm_swinv2_key_map", "timm_swinv2_rules"]

_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."
_HF_BLOCK = r"encoder.layers.\1.blocks.\2."


def timm_swinv2_rules() -> list[Rule]:
    """The rules for keys relative to the backbone root (``patch_embed...``, ``layers...``, ``norm...``)."""
    return [
        drop(r"layers\.\d+\.blocks\.\d+\.attn\.relative_position_index",
             "buffer: relative position index, recomputed by Transformers from the window size"),
        drop(r"layers\.\d+\.blocks\.\d+\.attn\.relative_coords_table",
             "buffer: continuous position bias coordinates, recomputed by Transformers from the window size"),
        drop(r"layers\.\d+\.blocks\.\d+\.attn_mask",
             "buffer: shifted-window attention mask, recomputed by Transformers for each input size"),
        drop(r"head\.(?:fc\.)?(?:weight|bias)",
             "the Swin-V2 backbone's own image classifier, unused by the audio-visual model"),
        rename(r"patch_embed\.proj\.(weight|bias)", r"embeddings.patch_embeddings.projection.\1"),
        rename(r"patch_embed\.norm\.(weight|bias)", r"embeddings.norm.\1"),
        split(_BLOCK + r"attn\.qkv\.weight",
              [_HF_BLOCK + "attention.self.query.weight", _HF_BLOCK + "attention.self.key.weight",
               _HF_BLOCK + "attention.self.value.weight"]),
        rename(_BLOCK + r"attn\.q_bias", _HF_BLOCK + "attention.self.query.bias"),
        rename(_BLOCK + r"attn\.v_bias", _HF_BLOCK + "attention.self.value.bias"),
        rename(_BLOCK + r"attn\.logit_scale", _HF_BLOCK + "attention.self.logit_scale"),
        rename(_BLOCK + r"attn\.cpb_mlp\.(0|2)\.(weight|bias)",
               _HF_BLOCK + r"attention.self.continuous_position_bias_mlp.\3.\4"),
        rename(_BLOCK + r"attn\.proj\.(weight|bias)", _HF_BLOCK + r"attention.output.dense.\3"),
        rename(_BLOCK + r"norm1\.(weight|bias)", _HF_BLOCK + r"layernorm_before.\3"),
        rename(_BLOCK + r"norm2\.(weight|bias)", _HF_BLOCK + r"layernorm_after.\3"),
        rename(_BLOCK + r"mlp\.fc1\.(weight|bias)", _HF_BLOCK + r"intermediate.dense.\3"),
        rename(_BLOCK + r"mlp\.fc2\.(weight|bias)", _HF_BLOCK + r"output.dense.\3"),
        rename(r"layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)",
               r"encoder.layers.\1.downsample.\2"),
        rename(r"norm\.(weight|bias)", r"layernorm.\1"),
    ]


def timm_swinv2_key_map(source_prefix: str = "", target_prefix: str = "") -> KeyMap:
    """The timm-0.6 Swin-V2 key map for keys under the literal ``source_prefix`` (e.g. ``"swin."``), producing
    `Swinv2Model` keys under ``target_prefix`` (e.g. ``"visual_encoder."``; empty for a bare ``Swinv2Model``)."""
    return KeyMap(timm_swinv2_rules(), name="timm Swin-V2 backbone").with_prefixes(source_prefix, target_prefix)


def swinv2_config_kwargs(
    img_size: int = 224,
    patch_size: int = 4,
    in_chans: int = 3,
    embed_dim: int = 96,
    depths: Sequence[int] = (2, 2, 6, 2),
    num_heads: Sequence[int] = (3, 6, 12, 24),
    window_size: int = 7,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    drop_rate: float = 0.0,
    attn_drop_rate: float = 0.0,
    drop_path_rate: float = 0.1,
    ape: bool = False,
    pretrained_window_sizes: Sequence[int] = (0, 0, 0, 0),
    **ignored: Any,
) -> dict[str, Any]:
    """`Swinv2Config` keyword arguments equal to timm-0.6 ``SwinTransformerV2(**kwargs)`` (same names and defaults
    as timm; ``num_classes`` and other head-only settings are ignored). Absolute position embeddings (``ape``) are
    not supported by this map: a ValueError says so."""
    if ape:
        raise ValueError("timm Swin-V2 with absolute position embeddings (ape=True) is not supported by this key map")
    unknown = set(ignored) - {"num_classes", "global_pool", "norm_layer", "patch_norm", "weight_init"}
    if unknown:
        raise ValueError(f"unknown timm SwinTransformerV2 argument(s): {sorted(unknown)}")
    return {
        "image_size": img_size,
        "patch_size": patch_size,
        "num_channels": in_chans,
        "embed_dim": embed_dim,
        "depths": list(depths),
        "num_heads": list(num_heads),
        "window_size": window_size,
        "mlp_ratio": mlp_ratio,
        "qkv_bias": qkv_bias,
        "hidden_dropout_prob": drop_rate,
        "attention_probs_dropout_prob": attn_drop_rate,
        "drop_path_rate": drop_path_rate,
        "hidden_act": "gelu",
        "use_absolute_embeddings": False,
        "layer_norm_eps": 1e-5,
        "pretrained_window_sizes": list(pretrained_window_sizes),
    }
