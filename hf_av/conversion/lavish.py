"""Convert original LAVisH AVE checkpoints (github.com/GenjiB/LAVISH, `AVE/nets/net_trans.py` `MMIL_Net`) to hf_av.

The original saves `torch.save(model.state_dict(), ...)` of `MMIL_Net` (no `module.` prefix): the frozen timm-0.6
Swin-V2 under `swin.`, four adapter lists and the two head Linears. The key map, every original key accounted for:

==========================================================  ===========================================================
original                                                     hf_av `LavishForAudioVisualEventLocalization`
==========================================================  ===========================================================
`swin.*`                                                     `lavish.backbone.swinv2.*` (shared timm Swin-V2 map)
`{audio,vis}_adapter_blocks_p1.{j}.*`                        `lavish.adapter_blocks.{j}.{audio,visual}_attention_adapter.*`
`{audio,vis}_adapter_blocks_p2.{j}.*`                        `lavish.adapter_blocks.{j}.{audio,visual}_mlp_adapter.*`
  `my_tokens` / `gate_av` / `gate`                             `latent_tokens` / `fusion_gate` / `gate`
  `down_sampler.weight` / `up_sampler.weight`                  `down_proj.weight` / `up_proj.weight`
  `bn1.*` / `bn2.*`                                            `down_norm.*` / `up_norm.*`
  `ln_before.*` / `ln_post.*`                                  `layernorm_before.*` / `layernorm_after.*`
`mlp_class.*` / `mlp_class_2.*`                              `classifier.dense.*` / `classifier.out_proj.*`
==========================================================  ===========================================================

Dropped with reasons: `adapter_token_downsampler.*` (built by the original, never used in forward nor trained),
`gate_tk` (AVE "v2" adapters only, never used in forward), and from the backbone the derived buffers and timm's own
ImageNet head (see `hf_av.conversion.timm_swinv2`).

Sizes come from `--original-config` (JSON in the layout of `tests/fixtures/lavish/config.json`: `swin` = the
`SwinTransformerV2` keyword arguments, `opt` = the original argparse flags, `mlp_hidden`, `num_classes`) or, without
it, from the tensor shapes (stage depths and widths, heads, window and image size from the shifted-window mask,
adapter reduction / groups / tokens / BatchNorm / LayerNorms / gates, head sizes); the drop-path rate is the timm
default 0.1 then (it only matters in training).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import torch

from ..errors import CheckpointConversionError
from .timm_swinv2 import swinv2_config_kwargs, timm_swinv2_key_map
from .toolkit import ConversionReport, KeyMap, atomic_output_dir, drop, load_torch_checkpoint, rename

logger = logging.getLogger(__name__)

ORIGINAL_KINDS = ("ave",)

_ADAPTER_LISTS = {
    "audio_adapter_blocks_p1": "audio_attention_adapter",
    "vis_adapter_blocks_p1": "visual_attention_adapter",
    "audio_adapter_blocks_p2": "audio_mlp_adapter",
    "vis_adapter_blocks_p2": "visual_mlp_adapter",
}
_ADAPTER_PARAMETERS = {
    r"my_tokens": "latent_tokens",
    r"gate_av": "fusion_gate",
    r"gate": "gate",
    r"down_sampler\.weight": "down_proj.weight",
    r"up_sampler\.weight": "up_proj.weight",
    r"bn1\.(weight|bias|running_mean|running_var|num_batches_tracked)": r"down_norm.\2",
    r"bn2\.(weight|bias|running_mean|running_var|num_batches_tracked)": r"up_norm.\2",
    r"ln_before\.(weight|bias)": r"layernorm_before.\2",
    r"ln_post\.(weight|bias)": r"layernorm_after.\2",
}

# original opt flags a ported checkpoint must have (the README AVE configuration); anything else is another model
_REQUIRED_FLAGS = {"is_multimodal": 1, "is_audio_adapter_p1": 1, "is_audio_adapter_p2": 1}


def lavish_key_map() -> KeyMap:
    """Original `MMIL_Net` (Swin path) keys -> `LavishForAudioVisualEventLocalization` keys."""
    rules = [
        drop(r"adapter_token_downsampler\.\d+\.weight",
             "built by the original MMIL_Net but never used in its forward nor trained"),
        drop(r"(?:audio|vis)_adapter_blocks_p[12]\.\d+\.gate_tk",
             "AVE v2 adapters only: a parameter the original forward never uses"),
    ]
    for original_list, adapter in _ADAPTER_LISTS.items():
        for original_name, name in _ADAPTER_PARAMETERS.items():
            rules.append(
                rename(rf"{original_list}\.(\d+)\.{original_name}", rf"lavish.adapter_blocks.\1.{adapter}.{name}")
            )
    rules += [
        rename(r"mlp_class\.(weight|bias)", r"classifier.dense.\1"),
        rename(r"mlp_class_2\.(weight|bias)", r"classifier.out_proj.\1"),
    ]
    return timm_swinv2_key_map("swin.", "lavish.backbone.swinv2.") + KeyMap(rules, name="LAVisH adapters and head")


def _stage_blocks(state_dict: dict[str, torch.Tensor]) -> list[int]:
    depths: dict[int, int] = {}
    for key in state_dict:
        found = re.fullmatch(r"swin\.layers\.(\d+)\.blocks\.(\d+)\.norm1\.weight", key)
        if found:
            stage, block = int(found.group(1)), int(found.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    if not depths or sorted(depths) != list(range(len(depths))):
        raise CheckpointConversionError(
            "not an original LAVisH Swin checkpoint: no (or non-consecutive) 'swin.layers.{i}.blocks.{j}.norm1.weight' "
            "keys (the ViT variant of the original is not supported)"
        )
    return [depths[stage] for stage in range(len(depths))]


def infer_original_config(state_dict: dict[str, torch.Tensor]) -> dict:
    """The original constructor arguments (layout of `tests/fixtures/lavish/config.json`) read from tensor shapes."""
    depths = _stage_blocks(state_dict)
    patch = state_dict["swin.patch_embed.proj.weight"]
    embed_dim, in_chans, patch_size = patch.shape[0], patch.shape[1], patch.shape[2]
    num_heads = [state_dict[f"swin.layers.{i}.blocks.0.attn.logit_scale"].shape[0] for i in range(len(depths))]
    fc1 = state_dict["swin.layers.0.blocks.0.mlp.fc1.weight"]
    swin = {
        "patch_size": int(patch_size), "in_chans": int(in_chans), "embed_dim": int(embed_dim), "depths": depths,
        "num_heads": [int(h) for h in num_heads], "mlp_ratio": fc1.shape[0] / fc1.shape[1],
        "img_size": 192, "window_size": 12,
    }
    masks = sorted(
        (int(m.group(1)), key) for key in state_dict
        if (m := re.fullmatch(r"swin\.layers\.(\d+)\.blocks\.\d+\.attn_mask", key))
    )
    if masks:
        # the first shifted block's mask is [windows, window_area, window_area]: window and grid of its stage
        stage, key = masks[0]
        windows, area = state_dict[key].shape[0], state_dict[key].shape[1]
        window, per_side = math.isqrt(area), math.isqrt(windows)
        swin["window_size"] = window
        swin["img_size"] = window * per_side * 2**stage * int(patch_size)
    else:
        logger.warning("no shifted-window mask in the checkpoint: assuming the released 192 px input and window 12")
    if "swin.head.weight" in state_dict:
        swin["num_classes"] = state_dict["swin.head.weight"].shape[0]

    adapter = "vis_adapter_blocks_p1.0."
    if adapter + "down_sampler.weight" not in state_dict:
        raise CheckpointConversionError(
            "no 'vis_adapter_blocks_p1.0.down_sampler.weight': not a multimodal bottleneck LAVisH checkpoint"
        )
    down = state_dict[adapter + "down_sampler.weight"]
    opt = {
        "Adapter_downsample": embed_dim // down.shape[0],
        "num_conv_group": embed_dim // down.shape[1],
        "num_tokens": state_dict[adapter + "my_tokens"].shape[0],
        "is_bn": int(adapter + "bn1.weight" in state_dict),
        "is_before_layernorm": int(adapter + "ln_before.weight" in state_dict),
        "is_post_layernorm": int(adapter + "ln_post.weight" in state_dict),
        "is_gate": int("audio_adapter_blocks_p1.0.gate" in state_dict),
        "is_multimodal": 1, "is_audio_adapter_p1": 1, "is_audio_adapter_p2": 1, "vis_encoder_type": "swin",
    }
    return {
        "swin": swin,
        "opt": opt,
        "mlp_hidden": state_dict["mlp_class.weight"].shape[0],
        "num_classes": state_dict["mlp_class_2.weight"].shape[0],
    }


def config_from_original(original: dict):
    """`LavishConfig` equal to the original constructor arguments (`swin`, `opt`, `mlp_hidden`, `num_classes`)."""
    from modeling.lavish import LavishConfig

    opt = original.get("opt", {})
    if opt.get("vis_encoder_type", "swin") != "swin":
        raise CheckpointConversionError(
            f"vis_encoder_type {opt['vis_encoder_type']!r}: only the Swin-V2 path of LAVisH is ported"
        )
    for flag, value in _REQUIRED_FLAGS.items():
        if int(opt.get(flag, value)) != value:
            raise CheckpointConversionError(
                f"original flag {flag}={opt[flag]}: only the multimodal LAVisH adapters beside both block halves "
                "(the README AVE configuration) are ported"
            )
    try:
        backbone = swinv2_config_kwargs(**original["swin"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointConversionError(f"original config 'swin' is not usable: {error}") from error
    return LavishConfig(
        backbone_config={"model_type": "swinv2", **backbone},
        adapter_reduction_factor=int(opt.get("Adapter_downsample", 8)),
        adapter_conv_groups=int(opt.get("num_conv_group", 2)),
        adapter_num_latent_tokens=int(opt.get("num_tokens", 2)),
        adapter_batch_norm=bool(opt.get("is_bn", 1)),
        adapter_layernorm_before=bool(opt.get("is_before_layernorm", 1)),
        adapter_layernorm_after=bool(opt.get("is_post_layernorm", 1)),
        audio_adapter_gate=bool(opt.get("is_gate", 1)),
        classifier_hidden_size=int(original.get("mlp_hidden", 512)),
        num_labels=int(original.get("num_classes", 29)),
        timm_window_mask=True,
    )


def _read_original_config(original_config) -> dict | None:
    if original_config is None or isinstance(original_config, dict):
        return original_config
    path = Path(original_config)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointConversionError(f"cannot read the original config {path}: {error}") from error


def _check_window_masks(state_dict: dict[str, torch.Tensor], model) -> None:
    """The dropped `attn_mask` buffers must equal the masks the port computes for the configured input size.

    timm builds them for its `img_size` and window; a mismatch means the config (given or inferred) is not the one
    the checkpoint was built with, which would change the shifted-window attention silently.
    """
    stages = model.lavish.backbone.swinv2.encoder.layers
    for key, mask in state_dict.items():
        found = re.fullmatch(r"swin\.layers\.(\d+)\.blocks\.(\d+)\.attn_mask", key)
        if not found:
            continue
        layer = stages[int(found.group(1))].blocks[int(found.group(2))]
        height, width = layer.input_resolution
        ours = layer.get_attn_mask(height, width, dtype=mask.dtype)
        if ours is None or ours.shape != mask.shape or not torch.equal(ours, mask):
            raise CheckpointConversionError(
                f"{key} {tuple(mask.shape)} does not match the shifted-window mask of the configured backbone "
                f"(image size {model.config.backbone_config.image_size}, window {layer.window_size}, shift "
                f"{layer.shift_size}: {None if ours is None else tuple(ours.shape)}); pass the original config "
                "the checkpoint was built with (--original-config)"
            )


def load_original_model(checkpoint_path, original_config=None):
    """Read an original checkpoint and return `(LavishForAudioVisualEventLocalization, ConversionReport)`.

    The state dict is read with `weights_only=True`; every key is mapped or dropped with a reason, the converted
    tensors must match the model's keys and shapes exactly (strict load).
    """
    from modeling.lavish import LavishForAudioVisualEventLocalization

    state_dict = load_torch_checkpoint(checkpoint_path)
    original = _read_original_config(original_config) or infer_original_config(state_dict)
    config = config_from_original(original)
    model = LavishForAudioVisualEventLocalization(config)
    converted, report = lavish_key_map().convert(state_dict, expected=model.state_dict())
    _check_window_masks(state_dict, model)
    model.load_state_dict(converted, strict=True)
    model.eval()
    return model, report


def lavish_processor_for_config(config):
    """A `LavishProcessor` sized for the backbone input (square frames and spectrogram image of `image_size`)."""
    from ..processing.lavish import LavishFeatureExtractor, LavishImageProcessor, LavishProcessor

    size = config.backbone_config.image_size
    size = size if isinstance(size, int) else size[0]
    feature_extractor = LavishFeatureExtractor(
        num_segments=config.num_segments, **({} if size == 192 else {"num_mel_bins": size, "target_length": size})
    )
    image_processor = LavishImageProcessor(size={"height": size, "width": size})
    return LavishProcessor(feature_extractor=feature_extractor, image_processor=image_processor)


def lavish_model_card(
    config, source_file: str, checkpoint=None, model_class_name: str = "", report: ConversionReport | None = None
):
    """Model card content for a converted LAVisH checkpoint (the row's `card_builder`).

    `checkpoint` is unused (no LAVisH weights are released); `report`, when the converter passes it, adds what was
    dropped from the original file.
    """
    from ..families import get_family
    from ..hub.model_card import ModelCardContent, family_sections

    facts = get_family("lavish").card
    backbone = config.backbone_config
    provenance = [
        f"- Converted from `{Path(source_file).name}`, a state dict of the original `MMIL_Net` "
        f"({facts.original_repository}, AVE), with `conversion_scripts/convert_lavish_original_to_hf.py`: every "
        "original key mapped or dropped on purpose, strict load. Parity with the original code is tested in fp32 "
        "(max abs diff <= 1e-5 on stage features, adapter inputs/outputs, logits and probabilities).",
        "- The authors released no trained LAVisH weights: this folder holds whatever the converted checkpoint was "
        "trained on.",
    ]
    if report is not None:
        provenance.append(f"- {report.num_source_keys} original keys; dropped on purpose:")
        provenance += [f"  - {reason}: {len(keys)} key(s)" for reason, keys in report.dropped_by_reason().items()]
    return ModelCardContent(
        model_name=f"LAVisH AVE ({Path(source_file).name})",
        summary=(
            f"LAVisH ({facts.paper_title}, {facts.authors_venue}, {facts.paper}) for audio-visual event "
            f"localisation ({config.num_labels} classes per one-second segment) in the `hf_av` package: a frozen "
            f"Swin-V2 (embed {backbone.embed_dim}, depths {list(backbone.depths)}, window {backbone.window_size}, "
            f"{backbone.image_size} px) runs over frames and spectrograms with LAVisH adapters in every block."
        ),
        license=facts.license,
        pipeline_tag="video-classification",
        tags=list(facts.tags),
        sections={
            "Usage": (
                "```python\nimport hf_av\nfrom hf_av import LavishForAudioVisualEventLocalization, LavishProcessor\n\n"
                "model = LavishForAudioVisualEventLocalization.from_pretrained(\"path/to/this/folder\")\n"
                "processor = LavishProcessor.from_pretrained(\"path/to/this/folder\")\n"
                "inputs = processor(videos=\"clip.mp4\", return_tensors=\"pt\")\n"
                "out = model(**inputs)\nout.probabilities  # [1, segments, classes]\n```"
            ),
            "Provenance": "\n".join(provenance),
            **family_sections(facts),
        },
    )


def convert_lavish_checkpoint(
    checkpoint_path, output_dir, original_config=None, original_model: str | None = None, write_model_card: bool = True
) -> Path:
    """Convert one original checkpoint into `output_dir` (safetensors, config, processor config, README.md).

    `original_model` may only be `"ave"` (the one original model kind ported). Written atomically: on any error
    nothing is left at `output_dir`.
    """
    if original_model not in (None, *ORIGINAL_KINDS):
        raise CheckpointConversionError(
            f"original model {original_model!r}: only {ORIGINAL_KINDS} (the AVE MMIL_Net) is ported"
        )
    from ..hub.model_card import write_model_card as write_card

    model, report = load_original_model(checkpoint_path, original_config)
    logger.info("%s", report.format())
    output_dir = Path(output_dir)
    with atomic_output_dir(output_dir) as staging:
        model.save_pretrained(staging)
        lavish_processor_for_config(model.config).save_pretrained(staging)
        if write_model_card:
            card = lavish_model_card(model.config, str(checkpoint_path), None, type(model).__name__, report=report)
            write_card(staging, card)
    return output_dir


__all__ = [
    "ORIGINAL_KINDS",
    "config_from_original",
    "convert_lavish_checkpoint",
    "infer_original_config",
    "lavish_key_map",
    "lavish_model_card",
    "lavish_processor_for_config",
    "load_original_model",
]
