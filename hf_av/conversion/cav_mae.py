"""Convert original CAV-MAE checkpoints (github.com/YuanGongND/cav-mae) to hf_av / Transformers folders.

Two kinds of original checkpoint exist, both saved from `torch.nn.DataParallel` (every key starts with
`module.`):

* `pretrain`: the `CAVMAE` pre-training model (encoder + MAE decoder) -> `CavMaeForPreTraining`;
* `finetune`: the `CAVMAEFT` classifier (encoder + `mlp_head`) -> `CavMaeForAudioVisualClassification`.

Every original key is renamed by `ORIGINAL_TO_HF_KEY_MAPPING` or listed in `DROPPED_ORIGINAL_KEYS`:
the modality-specific blocks (`blocks_a`, `blocks_v`) and the decoder blocks carry the audio/visual LayerNorm
variants `norm{1,2}_{a,v}` in every checkpoint but the original never calls them (only the shared `blocks_u` uses its
three LayerNorm sets), so they are dropped on purpose; hf_av's modality-specific and decoder layers have one
LayerNorm pair. Anything else is an error naming the keys.

Sizes come from (in this order): `--original-config` (the original constructor arguments, layout of
`tests/fixtures/cav-mae/config.json`), the release registry (`cav_mae_checkpoints`, matched by file name) and the
tensor shapes (depths, widths, patch size, number of patches and classes are read from the shapes; head counts
cannot be, see `infer_config_kwargs`).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError

from ..errors import CheckpointConversionError
from .cav_mae_checkpoints import CavMaeCheckpoint, find_released_checkpoint
from .common import apply_key_map, atomic_output_dir, check_against_model, load_original_state_dict, strip_prefix

logger = logging.getLogger(__name__)

ORIGINAL_PREFIX = "module."
ORIGINAL_KINDS = ("pretrain", "finetune")

_BLOCK_PARTS = [
    (r"attn\.qkv\.(weight|bias)", r"attention.qkv.\g<p>"),
    (r"attn\.proj\.(weight|bias)", r"attention.proj.\g<p>"),
    (r"mlp\.fc1\.(weight|bias)", r"mlp.fc1.\g<p>"),
    (r"mlp\.fc2\.(weight|bias)", r"mlp.fc2.\g<p>"),
]


def _block_rules(original: str, converted: str, norm_prefixes: dict[str, str]) -> list[tuple[str, str]]:
    """Rules for one original block list: `norm_prefixes` maps original LayerNorm suffixes ('', '_a', '_v') to the
    prefix of the hf_av LayerNorm names ('' -> `layernorm_before`, 'audio_' -> `audio_layernorm_before`, ...)."""
    rules = []
    for part, target in _BLOCK_PARTS:
        pattern = part.replace("(weight|bias)", "(?P<p>weight|bias)")
        rules.append((rf"{original}\.(?P<i>\d+)\.{pattern}", rf"{converted}.\g<i>.{target}"))
    for suffix, prefix in norm_prefixes.items():
        for number, where in (("1", "layernorm_before"), ("2", "layernorm_after")):
            rules.append(
                (rf"{original}\.(?P<i>\d+)\.norm{number}{suffix}\.(?P<p>weight|bias)", rf"{converted}.\g<i>.{prefix}{where}.\g<p>")
            )
    return rules


# Original key (after removing `module.`) -> hf_av key, full-match regexes tried in order.
ORIGINAL_TO_HF_KEY_MAPPING: list[tuple[str, str]] = [
    (r"patch_embed_a\.proj\.(weight|bias)", r"cav_mae.audio_embeddings.patch_embeddings.projection.\1"),
    (r"patch_embed_v\.proj\.(weight|bias)", r"cav_mae.visual_embeddings.patch_embeddings.projection.\1"),
    (r"pos_embed_a", r"cav_mae.audio_embeddings.position_embeddings"),
    (r"pos_embed_v", r"cav_mae.visual_embeddings.position_embeddings"),
    (r"modality_a", r"cav_mae.audio_embeddings.modality_embedding"),
    (r"modality_v", r"cav_mae.visual_embeddings.modality_embedding"),
    *_block_rules("blocks_a", "cav_mae.audio_layers", {"": ""}),
    *_block_rules("blocks_v", "cav_mae.visual_layers", {"": ""}),
    *_block_rules("blocks_u", "cav_mae.shared_layers", {"": "", "_a": "audio_", "_v": "visual_"}),
    (r"norm_a\.(weight|bias)", r"cav_mae.audio_layernorm.\1"),
    (r"norm_v\.(weight|bias)", r"cav_mae.visual_layernorm.\1"),
    (r"norm\.(weight|bias)", r"cav_mae.joint_layernorm.\1"),
    # pre-training decoder
    (r"decoder_embed\.(weight|bias)", r"decoder.embed.\1"),
    (r"mask_token", r"decoder.mask_token"),
    (r"decoder_modality_a", r"decoder.audio_modality_embedding"),
    (r"decoder_modality_v", r"decoder.visual_modality_embedding"),
    (r"decoder_pos_embed_a", r"decoder.audio_position_embeddings"),
    (r"decoder_pos_embed_v", r"decoder.visual_position_embeddings"),
    *_block_rules("decoder_blocks", "decoder.layers", {"": ""}),
    (r"decoder_norm\.(weight|bias)", r"decoder.layernorm.\1"),
    (r"decoder_pred_a\.(weight|bias)", r"decoder.audio_prediction.\1"),
    (r"decoder_pred_v\.(weight|bias)", r"decoder.visual_prediction.\1"),
    # fine-tuning head
    (r"mlp_head\.0\.(weight|bias)", r"classifier.layernorm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"classifier.dense.\1"),
]

# Present in every original checkpoint, never used by the original forward passes (see module docstring).
DROPPED_ORIGINAL_KEYS: list[str] = [
    r"blocks_[av]\.\d+\.norm[12]_[av]\.(weight|bias)",
    r"decoder_blocks\.\d+\.norm[12]_[av]\.(weight|bias)",
]

# A few keys every CAV-MAE checkpoint has: used to recognise a checkpoint of another model early.
_SIGNATURE_KEYS = ("patch_embed_a.proj.weight", "patch_embed_v.proj.weight", "pos_embed_a", "pos_embed_v", "norm_a.weight")


def original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an original checkpoint and remove DataParallel's `module.` prefix; refuse other models' checkpoints."""
    state_dict = strip_prefix(load_original_state_dict(path), ORIGINAL_PREFIX)
    missing = [k for k in _SIGNATURE_KEYS if k not in state_dict]
    if missing:
        sample = sorted(state_dict)[:8]
        raise CheckpointConversionError(
            f"{path} is not an original CAV-MAE checkpoint: missing key(s) {', '.join(missing)}; "
            f"its keys look like {', '.join(sample)}"
        )
    return state_dict


def infer_original_kind(state_dict: dict[str, torch.Tensor]) -> str:
    """`"pretrain"` (decoder keys) or `"finetune"` (`mlp_head` keys)."""
    has_decoder = any(k.startswith("decoder_") or k == "mask_token" for k in state_dict)
    has_head = any(k.startswith("mlp_head.") for k in state_dict)
    if has_decoder and has_head:
        raise CheckpointConversionError("checkpoint has both decoder_* and mlp_head.* keys; cannot tell its kind")
    if has_decoder:
        return "pretrain"
    if has_head:
        return "finetune"
    raise CheckpointConversionError(
        "checkpoint has neither decoder keys (decoder_*, mask_token) nor classifier keys (mlp_head.*)"
    )


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(m.group(1)) for k in state_dict if (m := re.match(rf"{re.escape(prefix)}\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def _released_heads(width: int) -> int:
    # Head counts are not visible in the weights. The released model uses 12 heads at width 768 (encoder) and 16 at
    # 512 (decoder); for other widths we fall back to 64-wide heads (ViT convention) and warn.
    known = {768: 12, 512: 16}
    if width in known:
        return known[width]
    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    logger.warning(
        "number of attention heads for width %d cannot be read from the weights; assuming %d. "
        "Pass --original-config with num_heads/decoder_num_heads for checkpoints of other sizes.", width, heads,
    )
    return heads


def infer_config_kwargs(state_dict: dict[str, torch.Tensor], kind: str) -> dict:
    """`CavMaeConfig` kwargs read from tensor shapes (assumes 128 mel bins and square frames, like the original)."""
    hidden_size, _, patch_size, _ = state_dict["patch_embed_a.proj.weight"].shape
    num_channels = state_dict["patch_embed_v.proj.weight"].shape[1]
    num_audio_patches = state_dict["pos_embed_a"].shape[1]
    num_visual_patches = state_dict["pos_embed_v"].shape[1]
    num_mel_bins = 128
    frequency_patches = num_mel_bins // patch_size
    if num_audio_patches % frequency_patches:
        raise CheckpointConversionError(
            f"pos_embed_a has {num_audio_patches} patches, not a multiple of {frequency_patches} frequency rows"
        )
    grid = int(round(num_visual_patches**0.5))
    if grid * grid != num_visual_patches:
        raise CheckpointConversionError(f"pos_embed_v has {num_visual_patches} patches, not a square grid")
    kwargs = dict(
        hidden_size=int(hidden_size),
        intermediate_size=int(state_dict["blocks_a.0.mlp.fc1.weight"].shape[0]) if "blocks_a.0.mlp.fc1.weight" in state_dict
        else int(state_dict["blocks_u.0.mlp.fc1.weight"].shape[0]),
        num_modality_specific_layers=_count_blocks(state_dict, "blocks_a"),
        num_shared_layers=_count_blocks(state_dict, "blocks_u"),
        patch_size=int(patch_size),
        num_channels=int(num_channels),
        num_mel_bins=num_mel_bins,
        audio_length=(num_audio_patches // frequency_patches) * int(patch_size),
        image_size=grid * int(patch_size),
    )
    if kind == "pretrain":
        decoder_width = int(state_dict["decoder_embed.weight"].shape[0])
        kwargs.update(
            decoder_hidden_size=decoder_width,
            decoder_intermediate_size=int(state_dict["decoder_blocks.0.mlp.fc1.weight"].shape[0])
            if "decoder_blocks.0.mlp.fc1.weight" in state_dict else 4 * decoder_width,
            decoder_num_hidden_layers=_count_blocks(state_dict, "decoder_blocks"),
        )
    else:
        kwargs["num_labels"] = int(state_dict["mlp_head.1.weight"].shape[0])
    return kwargs


def config_kwargs_from_original_config(original: dict, kind: str) -> dict:
    """Translate the original constructor arguments (`CAVMAE(...)` / `CAVMAEFT(...)`) to `CavMaeConfig` kwargs.

    `original` is either a flat dict of those arguments or the fixture layout with `"pretrain"` / `"finetune"`
    sections (the section of `kind` is used). `modality_specific_depth` maps to `num_modality_specific_layers`, and
    the original's fixed total depth of 12 gives `num_shared_layers = 12 - modality_specific_depth` unless the
    file states `num_shared_layers` explicitly.
    """
    section = original.get(kind, original) if isinstance(original.get(kind), dict) else original
    known = {"img_size", "audio_length", "patch_size", "in_chans", "embed_dim", "modality_specific_depth", "num_heads",
             "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss", "tr_pos",
             "label_dim", "num_shared_layers", "num_mel_bins"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise CheckpointConversionError(f"--original-config has unknown constructor argument(s): {', '.join(unknown)}")
    kwargs = {}
    embed_dim = section.get("embed_dim")
    mlp_ratio = float(section.get("mlp_ratio", 4.0))
    renames = {"img_size": "image_size", "audio_length": "audio_length", "patch_size": "patch_size",
               "in_chans": "num_channels", "embed_dim": "hidden_size", "num_heads": "num_attention_heads",
               "decoder_embed_dim": "decoder_hidden_size", "decoder_depth": "decoder_num_hidden_layers",
               "decoder_num_heads": "decoder_num_attention_heads", "norm_pix_loss": "norm_pix_loss",
               "tr_pos": "trainable_position_embeddings", "label_dim": "num_labels", "num_mel_bins": "num_mel_bins"}
    for original_name, name in renames.items():
        if original_name in section:
            kwargs[name] = section[original_name]
    if "modality_specific_depth" in section:
        depth = int(section["modality_specific_depth"])
        kwargs["num_modality_specific_layers"] = depth
        kwargs["num_shared_layers"] = int(section.get("num_shared_layers", max(0, 12 - depth)))
    elif "num_shared_layers" in section:
        kwargs["num_shared_layers"] = int(section["num_shared_layers"])
    if embed_dim is not None:
        kwargs["intermediate_size"] = int(embed_dim * mlp_ratio)
    if "decoder_embed_dim" in section:
        kwargs["decoder_intermediate_size"] = int(section["decoder_embed_dim"] * mlp_ratio)
    if kind == "finetune":
        # `norm_pix_loss` is only printed by CAVMAEFT; the classifier has no reconstruction loss
        kwargs.pop("norm_pix_loss", None)
    return kwargs


def build_config(state_dict, kind, original_config: dict | None = None, checkpoint: CavMaeCheckpoint | None = None):
    """Config from the shapes, updated by the registry entry and then by `--original-config` (most specific last),
    checked against the shapes again so that a wrong config file fails here with the differing fields named."""
    from modeling.cav_mae import CavMaeConfig

    inferred = infer_config_kwargs(state_dict, kind)
    kwargs = dict(inferred)
    if checkpoint is not None:
        kwargs.update(checkpoint.config_kwargs())
    if original_config is not None:
        kwargs.update(config_kwargs_from_original_config(original_config, kind))
    # head counts are invisible in the weights: registry / --original-config, else the released ones (warns)
    if "num_attention_heads" not in kwargs:
        kwargs["num_attention_heads"] = _released_heads(kwargs["hidden_size"])
    if kind == "pretrain":
        if "decoder_num_attention_heads" not in kwargs:
            kwargs["decoder_num_attention_heads"] = _released_heads(kwargs["decoder_hidden_size"])
        kwargs.setdefault("trainable_position_embeddings", False)
        kwargs.pop("num_labels", None)
    shape_fields = list(inferred)
    conflicts = [f"{k}: config {kwargs[k]!r} vs weights {inferred[k]!r}" for k in shape_fields if kwargs[k] != inferred[k]]
    if conflicts:
        raise CheckpointConversionError("the given configuration does not match the checkpoint's tensors: " + "; ".join(conflicts))
    try:
        return CavMaeConfig(**kwargs)
    except (ValueError, StrictDataclassError) as error:  # the config is a `@strict` dataclass
        raise CheckpointConversionError(f"invalid CAV-MAE configuration for this checkpoint: {error}") from error


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename original keys (already without `module.`) to hf_av keys; returns (converted, dropped original keys)."""
    return apply_key_map(state_dict, ORIGINAL_TO_HF_KEY_MAPPING, DROPPED_ORIGINAL_KEYS, what="CAV-MAE checkpoint")


def load_original_model(
    checkpoint_path: str | Path,
    original_config: dict | str | Path | None = None,
    original_model: str | None = None,
):
    """Build the hf_av model for an original checkpoint and load its weights strictly (fp32, eval mode).

    Returns `(model, registry_entry_or_None, dropped_keys)`.
    """
    from modeling.cav_mae import CavMaeForAudioVisualClassification, CavMaeForPreTraining

    state_dict = original_state_dict(checkpoint_path)
    kind = infer_original_kind(state_dict)
    if original_model is not None:
        if original_model not in ORIGINAL_KINDS:
            raise CheckpointConversionError(f"--original-model must be one of {ORIGINAL_KINDS}, got {original_model!r}")
        if original_model != kind:
            raise CheckpointConversionError(
                f"--original-model {original_model} given, but the checkpoint's keys are those of a {kind} model"
            )
    if isinstance(original_config, (str, Path)):
        try:
            original_config = json.loads(Path(original_config).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointConversionError(f"cannot read --original-config {original_config}: {error}") from error
    checkpoint = find_released_checkpoint(checkpoint_path)
    if checkpoint is not None and checkpoint.kind != kind:
        raise CheckpointConversionError(
            f"{Path(checkpoint_path).name} is released as a {checkpoint.kind} checkpoint but its keys are those of a {kind} model"
        )
    config = build_config(state_dict, kind, original_config, checkpoint)
    converted, dropped = convert_state_dict(state_dict)
    model_class = CavMaeForPreTraining if kind == "pretrain" else CavMaeForAudioVisualClassification
    model = model_class(config)
    check_against_model(converted, model.state_dict(), what=f"CAV-MAE {kind} checkpoint {Path(checkpoint_path).name}")
    model.load_state_dict(converted, strict=True)
    model.eval()
    return model, checkpoint, dropped


def _save_processor(config, output_dir: Path) -> bool:
    """Save a `CavMaeProcessor` sized for `config` (fbank length / mel bins, frame size) next to the weights.

    PROCESSOR HOOK: returns False (and logs) when `hf_av.processing.CavMaeProcessor` is not importable, so the
    converter keeps working in a tree without the preprocessing classes.
    """
    try:
        from ..processing import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor
    except ImportError:
        logger.warning("hf_av.processing.CavMaeProcessor is not available; no processor config written")
        return False
    feature_extractor = CavMaeFeatureExtractor(num_mel_bins=config.num_mel_bins, target_length=config.audio_length)
    size = config.image_size
    image_processor = CavMaeImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    CavMaeProcessor(feature_extractor=feature_extractor, image_processor=image_processor).save_pretrained(output_dir)
    return True


def convert_cav_mae_checkpoint(
    checkpoint_path: str | Path,
    output_dir: str | Path,
    original_config: dict | str | Path | None = None,
    original_model: str | None = None,
    write_model_card: bool = True,
) -> Path:
    """Convert one original checkpoint into `output_dir` (safetensors weights, config, processor, README.md).

    The folder is written atomically: on any error nothing is left at `output_dir`.
    """
    from ..hub.model_card import cav_mae_model_card, write_model_card as write_card

    model, checkpoint, dropped = load_original_model(checkpoint_path, original_config, original_model)
    logger.info("dropped %d unused original keys (norm{1,2}_{a,v} of non-shared blocks)", len(dropped))
    output_dir = Path(output_dir)
    with atomic_output_dir(output_dir) as staging:
        model.save_pretrained(staging)
        _save_processor(model.config, staging)
        if write_model_card:
            content = cav_mae_model_card(model.config, str(checkpoint_path), checkpoint, type(model).__name__)
            write_card(staging, content)
    return output_dir


__all__ = [
    "DROPPED_ORIGINAL_KEYS",
    "ORIGINAL_TO_HF_KEY_MAPPING",
    "build_config",
    "config_kwargs_from_original_config",
    "convert_cav_mae_checkpoint",
    "convert_state_dict",
    "infer_config_kwargs",
    "infer_original_kind",
    "load_original_model",
    "original_state_dict",
]
