"""Original DG-SCT AVE checkpoints (github haoyi-duan/DG-SCT, `AVE/nets/net_trans.py` `MMIL_Net`) -> hf_av.

A released AVE file (`models/best_82.18.pt`) is a plain `torch.save(model.state_dict())`: the frozen timm-0.6
Swin-V2 (`swin.`), the frozen HTS-AT (`htsat.`), four lists of DG-SCT modules (`{audio,vis}_adapter_blocks_{p1,p2}.N`),
`temporal_attn.` and `CMBS.`. The map composes the shared timm Swin-V2 map (`timm_swinv2`), the shared HTS-AT map
(`htsat`) and DG-SCT's own rules below; every key is mapped or dropped with a reason.

DG-SCT module (`VisualAdapter`) names -> `DgSctCrossModalModule`:
`gate` -> `gate`, `my_tokens` -> `latent_tokens`, `gate_av` -> `latent_gate`, `conv_adapter` (1x1 Conv2d over
tokens) -> `token_projection` (Linear over tokens), `fc` -> `channel_projection`, `fc_affine_audio_1` ->
`channel_guide_proj`, `fc_affine_video_1` -> `channel_self_proj`, `fc_affine_bottleneck` -> `channel_bottleneck`,
`fc_affine_v_c_att` -> `channel_attention`, `fc_affine_video_2` -> `spatial_self_proj`, `fc_affine_audio_2` ->
`spatial_guide_proj`, `fc_affine_v_s_att` -> `spatial_attention`, `down_sampler`/`up_sampler` -> `down_proj`/`up_proj`,
`bn1`/`bn2` -> `down_batch_norm`/`up_batch_norm`, `ln_before`/`ln_post` -> `layernorm_before`/`layernorm_after`.
List `p1` = before the (visual) attention half, `p2` = before the MLP half; `audio_`/`vis_` = the modality prompted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointConversionError
from .htsat import htsat_config_kwargs, htsat_key_map
from .timm_swinv2 import swinv2_config_kwargs, timm_swinv2_key_map
from .toolkit import KeyMap, Transform, atomic_output_dir, drop, load_torch_checkpoint, rename

logger = logging.getLogger(__name__)

__all__ = [
    "ORIGINAL_KINDS",
    "convert_dg_sct_checkpoint",
    "dg_sct_model_card",
    "processor_for_config",
    "dg_sct_config_from_original",
    "dg_sct_key_map",
    "dg_sct_module_key_map",
    "load_original_dg_sct",
]

_MODULE_NAMES = {
    "gate": "gate",
    "my_tokens": "latent_tokens",
    "gate_av": "latent_gate",
    "conv_adapter": "token_projection",
    "fc": "channel_projection",
    "fc_affine_audio_1": "channel_guide_proj",
    "fc_affine_video_1": "channel_self_proj",
    "fc_affine_bottleneck": "channel_bottleneck",
    "fc_affine_v_c_att": "channel_attention",
    "fc_affine_video_2": "spatial_self_proj",
    "fc_affine_audio_2": "spatial_guide_proj",
    "fc_affine_v_s_att": "spatial_attention",
    "down_sampler": "down_proj",
    "up_sampler": "up_proj",
    "bn1": "down_batch_norm",
    "bn2": "up_batch_norm",
    "ln_before": "layernorm_before",
    "ln_post": "layernorm_after",
}

# A 1x1 Conv2d over tokens `[N_self, N_other, 1, 1]` is a Linear over the token axis `[N_self, N_other]`.
conv1x1_to_linear = Transform("1x1 conv kernel -> linear weight", lambda tensor: tensor.flatten(1))

_TEMPORAL_LAYER_NAMES = {
    "linear1": "intermediate",
    "linear2": "output",
    "norm1": "attention_norm",
    "norm2": "output_norm",
}

UNUSED_DRAWN = "computed by the original forward but its result is never used"


def dg_sct_module_rules(source: str = "", target: str = "") -> list:
    """Rules for ONE DG-SCT module (`VisualAdapter`) under the literal prefixes ``source`` / ``target``."""
    escaped = source.replace(".", r"\.")
    rules = [
        drop(escaped + r"gate_tk", "latent-token gate, created but never used by the original"),
        rename(escaped + r"conv_adapter\.weight", target + "token_projection.weight", conv1x1_to_linear),
    ]
    for original, converted in _MODULE_NAMES.items():
        if original in ("gate", "my_tokens", "gate_av"):
            rules.append(rename(escaped + original, target + converted))
        else:
            rules.append(
                rename(
                    escaped + original + r"\.(weight|bias|running_mean|running_var|num_batches_tracked)",
                    target + converted + r".\1",
                )
            )
    return rules


def dg_sct_module_key_map(source_prefix: str = "", target_prefix: str = "") -> KeyMap:
    """Key map of one standalone DG-SCT module (the original `VisualAdapter`) -> `DgSctCrossModalModule`."""
    return KeyMap(dg_sct_module_rules(source_prefix, target_prefix), name="DG-SCT module")


def _adapter_list_rules(model_prefix: str) -> list:
    """The four adapter lists of `MMIL_Net` -> `cross_modal_blocks.N.{audio,visual}_before_{attention,mlp}`."""
    rules = []
    for original_modality, modality in (("audio", "audio"), ("vis", "visual")):
        for part, position in (("p1", "attention"), ("p2", "mlp")):
            source = rf"{original_modality}_adapter_blocks_{part}\.(\d+)\."
            target = rf"{model_prefix}cross_modal_blocks.\1.{modality}_before_{position}."
            rules.append(drop(source + "gate_tk", "latent-token gate, created but never used by the original"))
            rules.append(
                rename(source + r"conv_adapter\.weight", target + "token_projection.weight", conv1x1_to_linear)
            )
            for original, converted in _MODULE_NAMES.items():
                if original in ("gate", "my_tokens", "gate_av"):
                    rules.append(rename(source + original, target + converted))
                else:
                    rules.append(
                        rename(
                            source + original + r"\.(weight|bias|running_mean|running_var|num_batches_tracked)",
                            target + converted + r".\2",
                        )
                    )
    return rules


def _temporal_rules() -> list:
    """`temporal_attn.*` -> `temporal_attention.*` (and the unused template layers dropped)."""
    rules = [
        drop(
            r"temporal_attn\.(?:video|audio)_(?:encoder\.encoder_layer|decoder\.decoder_layer)\..*",
            "template layer the original registers besides its deep copies; never run",
        ),
        drop(
            r"temporal_attn\.(?:video|audio)_decoder\.decoder\.layers\.\d+\.self_attn\..*",
            "decoder self-attention, created but never run by the original (cross-attention only)",
        ),
        rename(r"temporal_attn\.v_fc\.(weight|bias)", r"temporal_attention.visual_projection.\1"),
        rename(r"temporal_attn\.a_fc\.(weight|bias)", r"temporal_attention.audio_projection.\1"),
        rename(
            r"temporal_attn\.audio_visual_rnn_layer\.(audio|visual)_rnn\.(\w+)", r"temporal_attention.\1_rnn.\2"
        ),
        rename(r"temporal_attn\.audio_gated\.0\.(weight|bias)", r"temporal_attention.audio_gate.\1"),
        rename(r"temporal_attn\.video_gated\.0\.(weight|bias)", r"temporal_attention.visual_gate.\1"),
    ]
    for original, modality in (("video", "visual"), ("audio", "audio")):
        for kind, stack, attention in (("encoder", "encoder", "self_attn"), ("decoder", "decoder", "multihead_attn")):
            source = rf"temporal_attn\.{original}_{kind}\."
            target = f"temporal_attention.{modality}_{kind}."
            rules.append(rename(source + r"affine_matrix\.(weight|bias)", target + r"input_projection.\1"))
            layer = source + rf"{stack}\.layers\.(\d+)\."
            rules.append(
                rename(layer + attention + r"\.(in_proj_weight|in_proj_bias)", target + r"layers.\1.attention.\2")
            )
            rules.append(
                rename(layer + attention + r"\.out_proj\.(weight|bias)", target + r"layers.\1.attention.out_proj.\2")
            )
            for original_name, name in _TEMPORAL_LAYER_NAMES.items():
                rules.append(rename(layer + original_name + r"\.(weight|bias)", target + rf"layers.\1.{name}.\2"))
    return rules


def _event_head_rules() -> list:
    return [
        drop(r"CMBS\.(?:AVInter|VAInter)\..*", "CMBS audio-visual interaction: " + UNUSED_DRAWN),
        drop(r"CMBS\.(?:video|audio)_norm\.(?:weight|bias)", "CMBS LayerNorms created but never used"),
        rename(r"CMBS\.video_cas\.(weight|bias)", r"event_head.visual_class_activation.\1"),
        rename(r"CMBS\.audio_cas\.(weight|bias)", r"event_head.audio_class_activation.\1"),
        rename(r"CMBS\.localize_module\.classifier\.(weight|bias)", r"event_head.event_presence.\1"),
        rename(r"CMBS\.localize_module\.event_classifier\.(weight|bias)", r"event_head.event_classifier.\1"),
    ]


def dg_sct_key_map(with_head: bool = True) -> KeyMap:
    """The whole `MMIL_Net` -> `DgSctForAudioVisualEventLocalization` map (`with_head=False`: -> `DgSctModel`)."""
    prefix = "dg_sct." if with_head else ""
    key_map = (
        timm_swinv2_key_map("swin.", prefix + "visual_backbone.swinv2.")
        + htsat_key_map("htsat.", prefix + "audio_backbone.audio_encoder.")
        + KeyMap(
            [drop(r"adapter_token_downsampler\.\d+\.weight", "token downsampler, created but never used")]
            + _adapter_list_rules(prefix)
        )
    )
    head_rules = _temporal_rules() + _event_head_rules()
    if not with_head:
        head_rules = [drop(r"(?:temporal_attn|CMBS)\..*", "AVE head (converted with the event-localisation model)")]
    key_map = key_map + KeyMap(head_rules)
    key_map.name = "DG-SCT AVE checkpoint"
    return key_map


# ------------------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------------------
def _count(state_dict: Mapping[str, Any], pattern: str) -> int:
    import re

    compiled = re.compile(pattern)
    return len({compiled.match(k).group(1) for k in state_dict if compiled.match(k)})


def dg_sct_config_from_original(
    original_config: Mapping[str, Any] | None = None, state_dict: Mapping[str, torch.Tensor] | None = None
):
    """`DgSctConfig` from the original's settings (layout of the fixture `config.json`: `opt`, `swin`, `htsat`,
    `heads`) or, without them, the released AVE configuration with sizes read from the tensor shapes."""
    from modeling.dg_sct import DgSctConfig

    original_config = dict(original_config or {})
    opt = dict(original_config.get("opt", {}))
    state_dict = state_dict or {}
    if state_dict:
        # What the tensors say wins over defaults (the released flags otherwise).
        tokens = state_dict.get("audio_adapter_blocks_p1.0.my_tokens")
        if tokens is not None:
            opt.setdefault("num_tokens", tokens.shape[0])
            width = tokens.shape[1]
            down = state_dict.get("audio_adapter_blocks_p1.0.down_sampler.weight")
            if down is not None:
                opt.setdefault("Adapter_downsample", width // down.shape[0])
                opt.setdefault("num_conv_group", width // down.shape[1])
        opt.setdefault("is_bn", int("audio_adapter_blocks_p1.0.bn1.weight" in state_dict))
        opt.setdefault("is_gate", int("audio_adapter_blocks_p1.0.gate" in state_dict))
        opt.setdefault("is_before_layernorm", int("audio_adapter_blocks_p1.0.ln_before.weight" in state_dict))
        opt.setdefault("is_post_layernorm", int("audio_adapter_blocks_p1.0.ln_post.weight" in state_dict))
    swin = dict(original_config.get("swin", {}))
    htsat = dict(original_config.get("htsat", {}))
    heads = dict(original_config.get("heads", {}))
    if state_dict and "swin.patch_embed.proj.weight" in state_dict:
        swin = {**_infer_swin(state_dict), **swin}  # given settings win over what the shapes say
    if state_dict and "htsat.patch_embed.proj.weight" in state_dict:
        htsat = {**_infer_htsat(state_dict), **htsat}
    if state_dict and not heads and "temporal_attn.v_fc.weight" in state_dict:
        heads = {
            "video_dim": state_dict["temporal_attn.v_fc.weight"].shape[0],
            "audio_dim": state_dict["temporal_attn.a_fc.weight"].shape[0],
            "d_model": state_dict["temporal_attn.audio_gated.0.weight"].shape[1],
            "ff_dim": state_dict["temporal_attn.audio_encoder.encoder.layers.0.linear1.weight"].shape[0],
        }
    vision_kwargs = swinv2_config_kwargs(**{"img_size": 192, "embed_dim": 192, "depths": (2, 2, 18, 2),
                                            "num_heads": (6, 12, 24, 48), "window_size": 12, **swin})
    audio_kwargs = htsat_config_kwargs(htsat, backbone_type=opt.get("backbone_type", "audioset"))
    num_events = 28
    if "CMBS.audio_cas.weight" in state_dict:
        num_events = state_dict["CMBS.audio_cas.weight"].shape[0]
    return DgSctConfig(
        vision_config=vision_kwargs,
        audio_config=audio_kwargs,
        num_latent_tokens=int(opt.get("num_tokens", 32)),
        adapter_reduction_factor=int(opt.get("Adapter_downsample", 8)),
        adapter_conv_groups=int(opt.get("num_conv_group", 2)),
        adapter_batch_norm=bool(opt.get("is_bn", 1)),
        adapter_layer_norm_before=bool(opt.get("is_before_layernorm", 1)),
        adapter_layer_norm_after=bool(opt.get("is_post_layernorm", 1)),
        gate_audio_adapters=bool(opt.get("is_gate", 1)),
        temporal_audio_dim=int(heads.get("audio_dim", 128)),
        temporal_visual_dim=int(heads.get("video_dim", 512)),
        temporal_hidden_size=int(heads.get("d_model", 256)),
        temporal_intermediate_size=int(heads.get("ff_dim", 1024)),
        num_labels=num_events + 1,
    )


def _infer_swin(state_dict):
    """timm Swin-V2 kwargs from the `swin.` tensor shapes (the released 192-px, window-12 model otherwise)."""
    depths = [_count(state_dict, rf"swin\.layers\.{i}\.blocks\.(\d+)\.") for i in range(4)]
    embed_dim = state_dict["swin.patch_embed.proj.weight"].shape[0]
    patch = state_dict["swin.patch_embed.proj.weight"].shape[-1]
    heads = [state_dict[f"swin.layers.{i}.blocks.0.attn.logit_scale"].shape[0] for i in range(4)]
    return {"embed_dim": embed_dim, "patch_size": patch, "depths": depths, "num_heads": heads}


def _infer_htsat(state_dict):
    depths = [_count(state_dict, rf"htsat\.layers\.{i}\.blocks\.(\d+)\.") for i in range(4)]
    embed_dim = state_dict["htsat.patch_embed.proj.weight"].shape[0]
    heads = [state_dict[f"htsat.layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1] for i in range(4)]
    mel_bins = state_dict["htsat.bn0.weight"].shape[0]
    n_fft = (state_dict["htsat.spectrogram_extractor.stft.conv_real.weight"].shape[-1]
             if "htsat.spectrogram_extractor.stft.conv_real.weight" in state_dict else 1024)
    return {"embed_dim": embed_dim, "depths": depths, "num_heads": heads, "mel_bins": mel_bins, "n_fft": n_fft}


# ------------------------------------------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------------------------------------------
def load_original_dg_sct(checkpoint, original_config: Mapping[str, Any] | str | Path | None = None):
    """Build `DgSctForAudioVisualEventLocalization` from an original AVE checkpoint (path or state dict) with strict
    accounting; returns `(model, report)`."""
    from modeling.dg_sct import DgSctForAudioVisualEventLocalization

    state_dict = load_torch_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else dict(checkpoint)
    if isinstance(original_config, (str, Path)):
        original_config = json.loads(Path(original_config).read_text())
    if not any(k.startswith("swin.") for k in state_dict) or not any(k.startswith("htsat.") for k in state_dict):
        raise CheckpointConversionError(
            "not a DG-SCT AVE checkpoint: expected keys under 'swin.' (Swin-V2) and 'htsat.' (HTS-AT)"
        )
    config = dg_sct_config_from_original(original_config, state_dict)
    model = DgSctForAudioVisualEventLocalization(config)
    expected = model.state_dict()
    converted, report = dg_sct_key_map(with_head=True).convert(state_dict, expected=expected)
    model.load_state_dict(converted, strict=True)
    model.eval()
    return model, report


def dg_sct_model_card(config, source_file: str, checkpoint=None, model_class_name: str = "", report=None):
    """Card of a converted DG-SCT checkpoint (the row's `card_builder`): the family facts plus what the
    conversion dropped and which parameters train."""
    from ..hub.model_card import ModelCardContent, _citation_line, family_sections
    from ..families import get_family

    facts = get_family("dg-sct").card
    sections = {
        "Usage": (
            "```python\nimport hf_av\nfrom transformers import pipeline\n"
            "localizer = pipeline(\"audio-visual-event-localization\", model=\"PATH\")\n"
            "localizer(\"clip.mp4\")  # one label per 1-second segment, merged into events\n```"
        ),
        "Provenance": f"- Converted from `{Path(source_file).name}` of {facts.original_repository} with "
        "`conversion_scripts/convert_dg_sct_original_to_hf.py`.",
        "Trainable parameters": (
            "Both backbones are frozen; `config.trainable_parameters` lists what trains (the DG-SCT modules and the "
            "head, as the original): " + ", ".join(f"`{p}`" for p in config.trainable_parameters) + "."
        ),
    }
    if report is not None:
        dropped = "\n".join(f"- {reason}: {len(keys)} key(s)" for reason, keys in report.dropped_by_reason().items())
        sections["Conversion"] = (
            f"{report.num_source_keys} original keys -> {report.num_target_keys} keys; left out on purpose:\n{dropped}"
        )
    return ModelCardContent(
        model_name=f"DG-SCT ({Path(source_file).name})",
        summary=(
            f"{_citation_line('dg-sct')}: prompts between a frozen Swin-V2 (visual) and a frozen HTS-AT (audio), "
            "with the CMBS-style head for supervised audio-visual event localisation on AVE (one class per "
            "1-second segment, 28 events + background), for the `hf_av` package."
        ),
        license=facts.license,
        pipeline_tag="video-classification",
        tags=list(facts.tags),
        datasets=["AVE"],
        sections={**sections, **family_sections(facts)},
    )


def processor_for_config(config):
    """A DG-SCT processor whose audio front-end and frame size match `config` (training from scratch)."""
    from ..processing.dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor

    audio = config.audio_config
    size = config.vision_config.image_size
    size = size if isinstance(size, int) else size[0]
    # The original tiles each 1-s segment 10x (1001 frames <= 1024 = spec_size * freq_ratio); a smaller HTS-AT
    # gets as many copies as its spectrogram image holds.
    max_frames = audio.spec_size * (audio.spec_size // audio.num_mel_bins)
    tile_repeats = max(1, min(10, (max_frames - 1) * audio.hop_length // audio.sampling_rate))
    feature_extractor = DgSctFeatureExtractor(
        sampling_rate=audio.sampling_rate,
        num_segments=config.num_segments,
        tile_repeats=tile_repeats,
        n_fft=audio.n_fft,
        hop_length=audio.hop_length,
        num_mel_bins=audio.num_mel_bins,
        f_min=audio.f_min,
        f_max=audio.f_max,
    )
    return DgSctProcessor(feature_extractor=feature_extractor, image_processor=DgSctImageProcessor(
        size={"height": size, "width": size}))


TASK_KINDS = ("avvp", "avqa", "avs", "avs-ms3")  # the heads of hf_av.conversion.dg_sct_tasks
ORIGINAL_KINDS = ("ave",)


def convert_dg_sct_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    original_config: str | Path | Mapping[str, Any] | None = None,
    original_model: str | None = None,
    write_model_card: bool = True,
) -> Path:
    """Convert an original AVE checkpoint into `output_dir` (safetensors, config, processor config, README.md),
    written atomically. `original_model`: `"ave"` (default) or one of the other task models `"avvp"`, `"avqa"`,
    `"avs"` (`hf_av.conversion.dg_sct_tasks`). Returns the folder."""
    from ..hub.model_card import write_model_card as write_card

    if original_model not in (None, *ORIGINAL_KINDS, *TASK_KINDS):
        raise CheckpointConversionError(
            f"DG-SCT original model {original_model!r} is not supported; supported: "
            f"{', '.join((*ORIGINAL_KINDS, *TASK_KINDS))}"
        )
    if original_model in TASK_KINDS:
        from .dg_sct_tasks import convert_dg_sct_task_checkpoint

        return convert_dg_sct_task_checkpoint(
            original_model, checkpoint, output_dir, original_config, write_model_card=write_model_card
        )
    model, report = load_original_dg_sct(checkpoint, original_config)
    logger.info(report.format())
    with atomic_output_dir(output_dir) as staging:
        model.save_pretrained(staging)
        processor_for_config(model.config).save_pretrained(staging)
        if write_model_card:
            write_card(staging, dg_sct_model_card(model.config, str(checkpoint), report=report))
    return Path(output_dir)
