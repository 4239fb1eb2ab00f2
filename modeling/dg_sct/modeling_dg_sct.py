"""DG-SCT: dual-guided spatial-channel-temporal prompts between a frozen Swin-V2 (visual) and a frozen HTS-AT (audio).

Duan et al., "Cross-modal Prompts: Adapting Large Pre-trained Models for Audio-Visual Downstream Tasks", NeurIPS 2023
(github haoyi-duan/DG-SCT, `AVE/nets/net_trans.py`). Both towers are Transformers' own modules (`Swinv2Model` through
`modeling.common.swinv2_adapter_host`, CLAP's HTS-AT encoder through `modeling.common.htsat_adapter_host`); the
DG-SCT modules sit beside their blocks exactly where the original puts them. Task heads are heads on `DgSctModel`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.clap.modeling_clap import ClapAudioSelfAttention
from transformers.models.swinv2.modeling_swinv2 import Swinv2Embeddings, Swinv2SelfAttention
from transformers.utils import ModelOutput

from ..common.htsat_adapter_host import HtsatAdapterHost
from ..common.swinv2_adapter_host import Swinv2AdapterHost
from .configuration_dg_sct import DgSctConfig

__all__ = [
    "DgSctCrossModalModule",
    "DgSctForAudioVisualEventLocalization",
    "DgSctModel",
    "DgSctModelOutput",
    "DgSctEventLocalizationOutput",
    "DgSctPreTrainedModel",
]


# ------------------------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class DgSctModelOutput(ModelOutput):
    r"""
    audio_pooler_output (`torch.FloatTensor` of shape `(batch_size, num_segments, audio_width)`):
        Audio tokens of the last stage pooled with the spatial (frequency-time) attention map of the last DG-SCT
        module, what the original feeds to its task heads.
    visual_pooler_output (`torch.FloatTensor` of shape `(batch_size, num_segments, visual_width)`):
        Visual tokens after the final LayerNorm, pooled with the spatial attention map of the last DG-SCT module.
    audio_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_segments, audio_tokens, audio_width)`):
        Last-stage audio tokens (no final norm: the original skips HTS-AT's `norm`).
    visual_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_segments, visual_tokens, visual_width)`):
        Last-stage visual tokens after Swin-V2's final LayerNorm.
    audio_attention_map (`torch.FloatTensor` of shape `(batch_size, num_segments, audio_tokens)`):
        The pooling weights of `audio_pooler_output` (softmax over tokens).
    visual_attention_map (`torch.FloatTensor` of shape `(batch_size, num_segments, visual_tokens)`):
        The pooling weights of `visual_pooler_output`.
    audio_hidden_states, visual_hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states`):
        Patch embeddings, then every stage's output before its downsampling (the last one after the final norm for
        the visual tower), each `(batch_size, num_segments, tokens, width)`.
    audio_attentions, visual_attentions (`tuple(torch.FloatTensor)`, *optional*, with `output_attentions`):
        Window-attention probabilities of every block, `(batch_size * num_segments * windows, heads, window_tokens,
        window_tokens)` (shapes differ between stages).
    """

    audio_pooler_output: torch.FloatTensor | None = None
    visual_pooler_output: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    visual_last_hidden_state: torch.FloatTensor | None = None
    audio_attention_map: torch.FloatTensor | None = None
    visual_attention_map: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class DgSctEventLocalizationOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
        The original AVE loss: BCE(is_event_logits, event present) + BCE(audio_visual_gate, event present) +
        CE(logits, video event) + CE(av_class_logits, video event).
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels - 1)`):
        Video-level event-class logits (the original `event_scores`, background excluded).
    is_event_logits (`torch.FloatTensor` of shape `(batch_size, num_segments)`):
        Per-segment event-presence logits (the original `is_event_scores`); a segment shows the video's event when
        `sigmoid(is_event_logits) > 0.5`, else background.
    audio_visual_gate (`torch.FloatTensor` of shape `(batch_size, num_segments)`):
        Product of the audio and visual segment gates (sigmoid outputs) of the temporal attention.
    av_class_logits (`torch.FloatTensor` of shape `(batch_size, num_labels - 1)`):
        Mean of the audio and visual top-k class-activation scores (the original `av_score`).
    audio_pooler_output, visual_pooler_output, audio_hidden_states, visual_hidden_states, audio_attentions,
    visual_attentions: as in `DgSctModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    is_event_logits: torch.FloatTensor | None = None
    audio_visual_gate: torch.FloatTensor | None = None
    av_class_logits: torch.FloatTensor | None = None
    audio_pooler_output: torch.FloatTensor | None = None
    visual_pooler_output: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None


# ------------------------------------------------------------------------------------------------------------------
# The DG-SCT module
# ------------------------------------------------------------------------------------------------------------------
class DgSctCrossModalModule(nn.Module):
    r"""One DG-SCT module (the original `VisualAdapter`): prompts for one modality guided by the other.

    Given own tokens `x` `[B', N, C]` and the other modality's tokens `[B', N_o, C_o]`:

    1. the other modality is projected onto the own token grid and width (`token_projection` mixes its tokens,
       `channel_projection` its channels);
    2. latent tokens gather from it and scatter into `x` (added through `latent_gate`, zero at init);
    3. channel attention guided by the other modality's mean token; 4. spatial attention likewise;
    5. `x * (alpha * channel + beta * spatial + 1 - alpha)`;
    6. bottleneck (LayerNorm, grouped 1x1 down, BN, ReLU, grouped 1x1 up, BN, LayerNorm) times `gate` (zero at init).

    Returns the residual to add (`[B', N, C]`) and the spatial attention map (`[B', N]`, softmax over tokens).
    """

    def __init__(
        self,
        config: DgSctConfig,
        width: int,
        num_tokens: int,
        other_width: int,
        other_num_tokens: int,
        gated: bool = True,
    ):
        super().__init__()
        bottleneck_width = width // config.adapter_reduction_factor
        guide_width = width // 2
        self.channel_attention_weight = config.channel_attention_weight
        self.spatial_attention_weight = config.spatial_attention_weight
        self.gate = nn.Parameter(torch.zeros(1)) if gated else None
        self.latent_tokens = nn.Parameter(torch.zeros(config.num_latent_tokens, width))
        self.latent_gate = nn.Parameter(torch.zeros(1))
        self.gate_before_layer_norm = config.gate_before_layer_norm
        if config.guide_resampling == "linear":
            self.token_projection = nn.Linear(other_num_tokens, num_tokens)
        else:  # "bicubic": square token grids resized (the AVS-S4 copy)
            self.token_projection = None
            self.grid_sizes = (math.isqrt(other_num_tokens), math.isqrt(num_tokens))
            if self.grid_sizes[0] ** 2 != other_num_tokens or self.grid_sizes[1] ** 2 != num_tokens:
                raise ValueError(
                    "guide_resampling='bicubic' needs square token grids, got "
                    f"{other_num_tokens} and {num_tokens} tokens."
                )
        self.channel_projection = nn.Linear(other_width, width)
        self.channel_guide_proj = nn.Linear(width, width)
        self.channel_self_proj = nn.Linear(width, width)
        self.channel_bottleneck = nn.Linear(width, guide_width)
        self.spatial_self_proj = nn.Linear(width, guide_width)
        self.spatial_guide_proj = nn.Linear(width, guide_width)
        self.spatial_attention = nn.Linear(guide_width, 1)
        self.channel_attention = nn.Linear(guide_width, width)
        groups = config.adapter_conv_groups
        self.down_proj = nn.Conv2d(width, bottleneck_width, 1, groups=groups, bias=False)
        self.up_proj = nn.Conv2d(bottleneck_width, width, 1, groups=groups, bias=False)
        self.down_batch_norm = nn.BatchNorm2d(bottleneck_width) if config.adapter_batch_norm else None
        self.up_batch_norm = nn.BatchNorm2d(width) if config.adapter_batch_norm else None
        self.layernorm_before = nn.LayerNorm(width) if config.adapter_layer_norm_before else None
        self.layernorm_after = nn.LayerNorm(width) if config.adapter_layer_norm_after else None

    def forward(self, hidden_states: torch.Tensor, guide_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # 1. the other modality on the own grid: mix its tokens, then its channels.
        if self.token_projection is not None:
            guide = self.token_projection(guide_states.transpose(1, 2)).transpose(1, 2)
            guide = self.channel_projection(guide)  # [B', N, C]
        else:
            guide = self.channel_projection(guide_states)
            other_side, side = self.grid_sizes
            grid = guide.reshape(guide.shape[0], other_side, other_side, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
            guide = grid.flatten(2).transpose(1, 2)

        # 2. latent-token exchange (no scaling, as the original).
        latent = self.latent_tokens.unsqueeze(0).expand(hidden_states.shape[0], -1, -1)
        gather = torch.softmax(torch.bmm(latent, guide.transpose(1, 2)), dim=-1)  # [B', K, N]
        latent = latent + torch.bmm(gather, guide)
        scatter = torch.softmax(torch.bmm(hidden_states, latent.transpose(1, 2)), dim=-1)  # [B', N, K]
        hidden_states = hidden_states + self.latent_gate * torch.bmm(scatter, latent)

        # 3. channel attention guided by the other modality's mean token.
        guide_mean = guide.mean(dim=1)  # [B', C]
        joint = F.relu(self.channel_guide_proj(guide_mean)).unsqueeze(1) * F.relu(self.channel_self_proj(hidden_states))
        channel = torch.sigmoid(self.channel_attention(F.relu(self.channel_bottleneck(joint.mean(dim=1)))))
        channel = channel.unsqueeze(1)  # [B', 1, C]
        channel_attended = hidden_states * (channel + 1)

        # 4. spatial attention on the channel-attended tokens.
        spatial = self.spatial_attention(
            F.relu(self.spatial_self_proj(channel_attended)) * F.relu(self.spatial_guide_proj(guide_mean)).unsqueeze(1)
        )  # [B', N, 1]
        attention_map = torch.softmax(torch.tanh(spatial).squeeze(-1), dim=-1)  # [B', N]

        # 5. re-weighting (of the step-2 tokens, not the channel-attended ones, as the original).
        alpha, beta = self.channel_attention_weight, self.spatial_attention_weight
        hidden_states = hidden_states * (alpha * channel + beta * torch.sigmoid(spatial) + 1 - alpha)

        # 6. bottleneck in the original's (B', C, N, 1) layout.
        if self.layernorm_before is not None:
            hidden_states = self.layernorm_before(hidden_states)
        bottleneck = self.down_proj(hidden_states.transpose(1, 2).unsqueeze(-1))
        if self.down_batch_norm is not None:
            bottleneck = self.down_batch_norm(bottleneck)
        output = self.up_proj(F.relu(bottleneck))
        if self.up_batch_norm is not None:
            output = self.up_batch_norm(output)
        output = output.squeeze(-1).transpose(1, 2)
        if self.gate is not None and self.gate_before_layer_norm:
            output = self.gate * output
        if self.layernorm_after is not None:
            output = self.layernorm_after(output)
        if self.gate is not None and not self.gate_before_layer_norm:
            output = self.gate * output
        return output, attention_map


class DgSctCrossModalBlock(GradientCheckpointingLayer):
    r"""The four DG-SCT modules of one audio block and its paired visual block, and the paired step itself: one
    module per direction before the (visual) attention half and one per direction before the (visual) MLP half."""

    def __init__(self, config: DgSctConfig, visual_width, visual_tokens, audio_width, audio_tokens):
        super().__init__()
        gate_audio = config.gate_audio_adapters
        self.audio_before_attention = DgSctCrossModalModule(
            config, audio_width, audio_tokens, visual_width, visual_tokens, gated=gate_audio
        )
        self.visual_before_attention = DgSctCrossModalModule(
            config, visual_width, visual_tokens, audio_width, audio_tokens
        )
        self.audio_before_mlp = DgSctCrossModalModule(
            config, audio_width, audio_tokens, visual_width, visual_tokens, gated=gate_audio
        )
        self.visual_before_mlp = DgSctCrossModalModule(config, visual_width, visual_tokens, audio_width, audio_tokens)

    def forward(
        self,
        visual: torch.Tensor,
        audio: torch.Tensor,
        *,
        visual_backbone,
        audio_backbone,
        visual_layer,
        audio_layer,
        visual_dims: tuple[int, int],
        audio_dims: tuple[int, int],
        output_attentions: bool = False,
    ):
        """One paired step as the original `forward_swin` runs it. Returns (visual, audio, visual map, audio map,
        visual attentions, audio attentions)."""
        # Before the pair: both DG-SCT modules read the block inputs.
        audio_residual, _ = self.audio_before_attention(audio, visual)
        visual_residual, _ = self.visual_before_attention(visual, audio)
        visual, visual_attentions = visual_backbone.attention_half(visual_layer, visual, visual_dims, output_attentions)
        visual = visual + visual_residual
        # The HTS-AT block runs whole; its DG-SCT residual is added after it.
        audio, audio_attentions = audio_backbone.block(audio_layer, audio, audio_dims, output_attentions)
        audio = audio + audio_residual
        # Before the visual MLP half: both read the updated streams.
        audio_residual, audio_map = self.audio_before_mlp(audio, visual)
        visual_residual, visual_map = self.visual_before_mlp(visual, audio)
        visual = visual_backbone.mlp_half(visual_layer, visual) + visual_residual
        audio = audio + audio_residual
        return visual, audio, visual_map, audio_map, visual_attentions, audio_attentions


# ------------------------------------------------------------------------------------------------------------------
# Pre-trained base
# ------------------------------------------------------------------------------------------------------------------
def _visual_grid(vision_config, stage: int) -> int:
    image_size = vision_config.image_size
    patch_size = vision_config.patch_size
    height = image_size if isinstance(image_size, int) else image_size[0]
    width = image_size if isinstance(image_size, int) else image_size[1]
    patch_h = patch_size if isinstance(patch_size, int) else patch_size[0]
    patch_w = patch_size if isinstance(patch_size, int) else patch_size[1]
    return ((height // patch_h) // 2**stage) * ((width // patch_w) // 2**stage)


def _audio_grid(audio_config, stage: int) -> int:
    stride = audio_config.patch_stride
    stride = (stride, stride) if isinstance(stride, int) else stride
    return ((audio_config.spec_size // stride[0]) // 2**stage) * ((audio_config.spec_size // stride[1]) // 2**stage)


class DgSctPreTrainedModel(PreTrainedModel):
    config: DgSctConfig
    config_class = DgSctConfig  # explicit: postponed annotations hide the class from Transformers
    base_model_prefix = "dg_sct"
    main_input_name = "input_values"
    input_modalities = ("audio", "video")
    supports_gradient_checkpointing = True
    # Transformers' Swin-V2 and CLAP audio attention have no SDPA / flash path.
    _supports_sdpa = False
    _no_split_modules = ["DgSctCrossModalBlock", "Swinv2Stage", "ClapAudioStage"]
    accepts_loss_kwargs = False

    @classmethod
    def from_pretrained_backbones(cls, vision_backbone, audio_backbone, config: DgSctConfig | None = None, **kwargs):
        r"""A fresh DG-SCT model (modules and head newly initialised, gates at zero) around pretrained backbones,
        with the trainable-parameter policy applied: only `config.trainable_parameters` (the DG-SCT modules and the
        head by default) train.

        Args:
            vision_backbone: a `Swinv2Model` (or a folder / Hub id of a Swin-V2 model, e.g. a converted
                `swinv2_large_window12_192_22k`).
            audio_backbone: a `ClapAudioModel` (or a folder / Hub id of one; `HtsatConfig` switches keep the
                original HTS-AT behaviour).
            config: DG-SCT settings; its backbone sub-configs are replaced by the backbones' own. Extra `kwargs`
                update a default `DgSctConfig` instead.
        Returns the model; `model.trainable_report` holds the trainable / total parameter counts.
        """
        from transformers import ClapAudioModel, Swinv2Model

        from ..common.htsat_adapter_host import HtsatConfig
        from ..common.trainable import freeze_except

        vision = _load_backbone(vision_backbone, Swinv2Model, "vision_backbone")
        audio = _load_backbone(audio_backbone, ClapAudioModel, "audio_backbone")
        settings = config.to_dict() if config is not None else {}
        settings.update(kwargs)
        audio_settings = {k: v for k, v in audio.config.to_dict().items() if k in HtsatConfig.__dataclass_fields__}
        if isinstance(audio.config, HtsatConfig):
            audio_settings = audio.config.to_dict()
        for key in ("model_type", "transformers_version", "architectures"):
            audio_settings.pop(key, None)
        settings["vision_config"] = {k: v for k, v in vision.config.to_dict().items() if k not in ("model_type",)}
        settings["audio_config"] = audio_settings
        for key in ("model_type", "transformers_version", "architectures"):
            settings.pop(key, None)
        model = cls(DgSctConfig(**settings))
        base = getattr(model, cls.base_model_prefix, model)
        base.visual_backbone.swinv2.load_state_dict(vision.state_dict())
        base.audio_backbone.audio_encoder.load_state_dict(audio.audio_encoder.state_dict())
        model.trainable_report = freeze_except(model, model.config.trainable_parameters)
        return model

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, DgSctCrossModalModule):
            if module.gate is not None:
                init.zeros_(module.gate)
            init.zeros_(module.latent_gate)
            if self.config.latent_token_init == "uniform":
                init.uniform_(module.latent_tokens, 0.0, 1.0)
            else:
                init.zeros_(module.latent_tokens)
        elif isinstance(module, Swinv2Embeddings):
            if module.mask_token is not None:
                init.zeros_(module.mask_token)
            if module.position_embeddings is not None:
                init.zeros_(module.position_embeddings)
        elif isinstance(module, Swinv2SelfAttention):
            init.constant_(module.logit_scale, torch.log(torch.tensor(10.0)).item())
            relative_coords_table, relative_position_index = module.create_coords_table_and_index()
            init.copy_(module.relative_coords_table, relative_coords_table)
            init.copy_(module.relative_position_index, relative_position_index)
        elif isinstance(module, ClapAudioSelfAttention):
            init.zeros_(module.relative_position_bias_table)
            init.copy_(module.relative_position_index, module.create_relative_position_index())


def _load_backbone(source, model_class, what: str):
    if isinstance(source, model_class):
        return source
    if isinstance(source, PreTrainedModel):
        raise TypeError(
            f"{what} must be a {model_class.__name__} (or a folder / Hub id of one), got {type(source).__name__}."
        )
    return model_class.from_pretrained(source)


def _check_inputs(input_values: torch.Tensor | None, pixel_values: torch.Tensor | None, config: DgSctConfig):
    if input_values is None or pixel_values is None:
        given = (("input_values", input_values), ("pixel_values", pixel_values))
        missing = [name for name, value in given if value is None]
        raise ValueError(
            f"DG-SCT needs both modalities (each guides the other inside the encoders); missing: {', '.join(missing)}."
        )
    if input_values.ndim != 4:
        raise ValueError(
            "input_values must be log-mel spectrograms [batch, segments, frames, mel_bins] (DgSctFeatureExtractor), "
            f"got shape {tuple(input_values.shape)}."
        )
    if input_values.shape[-1] != config.audio_config.num_mel_bins:
        raise ValueError(
            f"input_values has {input_values.shape[-1]} mel bins, the model expects "
            f"{config.audio_config.num_mel_bins} (audio_config.num_mel_bins)."
        )
    max_frames = config.audio_config.spec_size * (config.audio_config.spec_size // config.audio_config.num_mel_bins)
    if input_values.shape[2] > max_frames:
        raise ValueError(
            f"input_values has {input_values.shape[2]} frames per segment; HTS-AT takes at most {max_frames} "
            "(spec_size * freq_ratio)."
        )
    if pixel_values.ndim != 5:
        raise ValueError(
            "pixel_values must be frames [batch, segments, channels, height, width], got shape "
            f"{tuple(pixel_values.shape)}."
        )
    image_size = config.vision_config.image_size
    image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if tuple(pixel_values.shape[-2:]) != image_size:
        raise ValueError(
            f"pixel_values frames are {pixel_values.shape[-2]}x{pixel_values.shape[-1]}; the model takes "
            f"{image_size[0]}x{image_size[1]} (vision_config.image_size): the DG-SCT token projections are tied to "
            "the token grid of that size."
        )
    if pixel_values.shape[:2] != input_values.shape[:2]:
        raise ValueError(
            f"input_values and pixel_values must have the same batch size and number of segments, got "
            f"{tuple(input_values.shape[:2])} and {tuple(pixel_values.shape[:2])}."
        )


class DgSctModel(DgSctPreTrainedModel):
    r"""DG-SCT encoder: frozen Swin-V2 (`visual_backbone`) and HTS-AT (`audio_backbone`) with DG-SCT modules
    (`cross_modal_blocks`, one per audio block) between them. Every segment (one frame + its audio) is encoded on its
    own. Returns per-modality tokens and their attention-pooled vectors, the input of the task heads."""

    def __init__(self, config: DgSctConfig):
        super().__init__(config)
        # The DG-SCT blocks are registered first: they are the checkpointed layers (the backbones' own stages are
        # stepped block by block, never called whole), and Transformers' tests look for the first such layer.
        blocks = []
        for stage, audio_depth in enumerate(config.audio_config.depths):
            visual_width = config.vision_config.embed_dim * 2**stage
            audio_width = config.audio_config.patch_embeds_hidden_size * 2**stage
            for _ in range(audio_depth):
                blocks.append(
                    DgSctCrossModalBlock(
                        config,
                        visual_width,
                        _visual_grid(config.vision_config, stage),
                        audio_width,
                        _audio_grid(config.audio_config, stage),
                    )
                )
        self.cross_modal_blocks = nn.ModuleList(blocks)
        # timm_window_mask: the original runs timm 0.6 Swin-V2, which adds the shifted-window mask once.
        self.visual_backbone = Swinv2AdapterHost(config.vision_config, timm_window_mask=True)
        self.audio_backbone = HtsatAdapterHost(config.audio_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.visual_backbone.swinv2.embeddings.patch_embeddings

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DgSctModelOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, num_segments, frames, num_mel_bins)`):
            HTS-AT log-mel spectrograms of every segment, before the model's batch norm (what
            `DgSctFeatureExtractor` returns: 1001 x 64 per tiled 1-s segment with the release settings).
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_segments, 3, height, width)`):
            One normalised frame per segment (`DgSctImageProcessor`).
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        _check_inputs(input_values, pixel_values, self.config)
        batch_size, num_segments = input_values.shape[:2]
        spectrogram = input_values.reshape(batch_size * num_segments, 1, *input_values.shape[2:]).to(self.dtype)
        frames = pixel_values.reshape(batch_size * num_segments, *pixel_values.shape[2:]).to(self.dtype)
        visual_backbone, audio_backbone = self.visual_backbone, self.audio_backbone

        visual, visual_dims = visual_backbone.embed(frames)
        audio, audio_dims = audio_backbone.embed(spectrogram)
        visual_states = [] if output_hidden_states else None
        audio_states = [] if output_hidden_states else None

        def per_segment(tensor):
            return tensor.reshape(batch_size, num_segments, *tensor.shape[1:])

        def record(states, tensor):
            """Keep `tensor` as `[batch, segments, ...]` and continue from that very tensor (so a gradient asked of
            a recorded state reaches it)."""
            if states is None:
                return tensor
            states.append(per_segment(tensor))
            return states[-1].flatten(0, 1)

        visual = record(visual_states, visual)
        audio = record(audio_states, audio)

        visual_attentions = [] if output_attentions else None
        audio_attentions = [] if output_attentions else None
        blocks = iter(self.cross_modal_blocks)
        audio_map = visual_map = None
        stages = list(zip(visual_backbone.iter_stages(), audio_backbone.iter_stages()))
        for (visual_stage, audio_stage), pairing in zip(stages, self.config.paired_visual_blocks):
            audio_layer_of = {visual_index: audio_stage.blocks[i] for i, visual_index in enumerate(pairing)}
            for visual_index, visual_layer in enumerate(visual_stage.blocks):
                audio_layer = audio_layer_of.get(visual_index)
                if audio_layer is None:  # an unpaired visual block runs unmodified
                    visual, attentions = visual_backbone.block(visual_layer, visual, visual_dims, output_attentions)
                    if output_attentions:
                        visual_attentions.append(attentions)
                    continue
                visual, audio, visual_map, audio_map, attentions, audio_attention = next(blocks)(
                    visual,
                    audio,
                    visual_backbone=visual_backbone,
                    audio_backbone=audio_backbone,
                    visual_layer=visual_layer,
                    audio_layer=audio_layer,
                    visual_dims=visual_dims,
                    audio_dims=audio_dims,
                    output_attentions=output_attentions,
                )
                if output_attentions:
                    visual_attentions.append(attentions)
                    audio_attentions.append(audio_attention)
            if visual_stage.has_downsample:  # the last visual stage is recorded after the final norm
                visual = record(visual_states, visual)
            audio = record(audio_states, audio)
            visual, visual_dims = visual_backbone.downsample(visual_stage, visual, visual_dims)
            audio, audio_dims = audio_backbone.downsample(audio_stage, audio, audio_dims)

        # The audio tower's final norm is not applied (original).
        visual = record(visual_states, visual_backbone.final_norm(visual))
        # Pooling with the spatial maps of the last DG-SCT pair (computed before the last visual MLP half).
        visual_pooled = torch.bmm(visual_map.unsqueeze(1), visual).squeeze(1)
        audio_pooled = torch.bmm(audio_map.unsqueeze(1), audio).squeeze(1)

        output = DgSctModelOutput(
            audio_pooler_output=per_segment(audio_pooled),
            visual_pooler_output=per_segment(visual_pooled),
            audio_last_hidden_state=per_segment(audio),
            visual_last_hidden_state=per_segment(visual),
            audio_attention_map=per_segment(audio_map),
            visual_attention_map=per_segment(visual_map),
            audio_hidden_states=tuple(audio_states) if output_hidden_states else None,
            visual_hidden_states=tuple(visual_states) if output_hidden_states else None,
            audio_attentions=tuple(audio_attentions) if output_attentions else None,
            visual_attentions=tuple(visual_attentions) if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()


# ------------------------------------------------------------------------------------------------------------------
# AVE head: temporal attention (CMRAN-style encoders/decoders with cross-modal gates) + CMBS classifier
# ------------------------------------------------------------------------------------------------------------------
class DgSctTemporalLayer(nn.Module):
    r"""Post-norm transformer layer over segments (the original `EncoderLayer` / `DecoderLayer`). As a decoder layer
    (`memory` given) it cross-attends to `[memory; query]` concatenated along time, as the original."""

    def __init__(self, config: DgSctConfig):
        super().__init__()
        hidden = config.temporal_hidden_size
        self.attention = nn.MultiheadAttention(
            hidden, config.temporal_num_attention_heads, dropout=config.temporal_dropout, batch_first=True
        )
        self.attention_norm = nn.LayerNorm(hidden)
        self.intermediate = nn.Linear(hidden, config.temporal_intermediate_size)
        self.output = nn.Linear(config.temporal_intermediate_size, hidden)
        self.output_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(config.temporal_dropout)

    def forward(self, hidden_states: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        keys = hidden_states if memory is None else torch.cat([memory, hidden_states], dim=1)
        attended = self.attention(hidden_states, keys, keys, need_weights=False)[0]
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))
        feed_forward = self.output(self.dropout(F.relu(self.intermediate(hidden_states))))
        return self.output_norm(hidden_states + self.dropout(feed_forward))


class DgSctTemporalStack(nn.Module):
    r"""Input projection then temporal layers: self-attention encoder (original `InternalTemporalRelationModule`)
    or, with `memory`, cross-modal decoder (original `CrossModalRelationAttModule`)."""

    def __init__(self, config: DgSctConfig, input_dim: int, num_layers: int):
        super().__init__()
        self.input_projection = nn.Linear(input_dim, config.temporal_hidden_size)
        self.layers = nn.ModuleList([DgSctTemporalLayer(config) for _ in range(num_layers)])

    def forward(self, hidden_states: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        hidden_states = self.input_projection(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, memory)
        return hidden_states


class DgSctTemporalAttention(nn.Module):
    r"""The original `TemporalAttention` (batch-first here): projections, BiLSTMs, per-modality temporal encoders,
    cross-modal decoders and the audio/visual segment gates."""

    def __init__(self, config: DgSctConfig):
        super().__init__()
        hidden = config.temporal_hidden_size
        visual_width = config.vision_config.embed_dim * 2 ** (len(config.vision_config.depths) - 1)
        audio_width = config.audio_config.patch_embeds_hidden_size * 2 ** (len(config.audio_config.depths) - 1)
        self.gate_scale = config.temporal_gate_scale
        self.visual_projection = nn.Linear(visual_width, config.temporal_visual_dim)
        self.audio_projection = nn.Linear(audio_width, config.temporal_audio_dim)
        self.dropout = nn.Dropout(config.visual_projection_dropout)
        self.audio_rnn = nn.LSTM(config.temporal_audio_dim, hidden // 2, batch_first=True, bidirectional=True)
        self.visual_rnn = nn.LSTM(config.temporal_visual_dim, hidden, batch_first=True, bidirectional=True)
        self.visual_encoder = DgSctTemporalStack(config, 2 * hidden, config.temporal_num_encoder_layers)
        self.audio_encoder = DgSctTemporalStack(config, hidden, config.temporal_num_encoder_layers)
        self.visual_decoder = DgSctTemporalStack(config, 2 * hidden, config.temporal_num_decoder_layers)
        self.audio_decoder = DgSctTemporalStack(config, hidden, config.temporal_num_decoder_layers)
        self.audio_gate = nn.Linear(hidden, 1)
        self.visual_gate = nn.Linear(hidden, 1)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor):
        audio = self.audio_projection(audio)
        visual = self.dropout(F.relu(self.visual_projection(visual)))
        audio, _ = self.audio_rnn(audio)
        visual, _ = self.visual_rnn(visual)
        visual_memory = self.visual_encoder(visual)
        audio_query = self.audio_decoder(audio, visual_memory)
        audio_memory = self.audio_encoder(audio)
        visual_query = self.visual_decoder(visual, audio_memory)
        audio_gate = torch.sigmoid(self.audio_gate(audio_memory))
        visual_gate = torch.sigmoid(self.visual_gate(visual_memory))
        visual_query = visual_query + audio_gate * visual_query * self.gate_scale
        audio_query = audio_query + visual_gate * audio_query * self.gate_scale
        return visual_query, audio_query, audio_gate * visual_gate


class DgSctEventHead(nn.Module):
    r"""The original `CMBS` classifier: per-segment event presence and video-level event class, plus the top-k
    class-activation score of each modality."""

    def __init__(self, config: DgSctConfig):
        super().__init__()
        hidden = config.temporal_hidden_size
        self.top_k = config.class_activation_top_k
        self.class_activation_weight = config.class_activation_weight
        self.visual_class_activation = nn.Linear(hidden, config.num_event_classes)
        self.audio_class_activation = nn.Linear(hidden, config.num_event_classes)
        self.event_presence = nn.Linear(hidden, 1)
        self.event_classifier = nn.Linear(hidden, config.num_event_classes)

    def _top_k_mean(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.sort(dim=1, descending=True).values[:, : self.top_k].mean(dim=1)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor):
        visual_scores = self._top_k_mean(self.visual_class_activation(visual))
        audio_scores = self._top_k_mean(self.audio_class_activation(audio))
        av_class_logits = (visual_scores + audio_scores) / 2
        fused = (visual + audio) / 2
        is_event_logits = self.event_presence(fused).squeeze(-1)
        event_logits = self.event_classifier(fused.max(dim=1).values)
        return is_event_logits, event_logits + self.class_activation_weight * av_class_logits, av_class_logits


class DgSctForAudioVisualEventLocalization(DgSctPreTrainedModel):
    r"""DG-SCT for supervised audio-visual event localisation (AVE): `DgSctModel` + the original temporal attention
    and CMBS head. A segment shows the video's event class (`logits.argmax(-1)`) when
    `sigmoid(is_event_logits) > 0.5`, else background (the last label)."""

    def __init__(self, config: DgSctConfig):
        super().__init__(config)
        self.dg_sct = DgSctModel(config)
        self.temporal_attention = DgSctTemporalAttention(config)
        self.event_head = DgSctEventHead(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.dg_sct.get_input_embeddings()

    def compute_loss(self, labels, is_event_logits, audio_visual_gate, logits, av_class_logits) -> torch.Tensor:
        """The original AVE loss from per-segment class ids `labels` `[B, S]` (background = last label, -100 =
        padding). BCE-with-logits is applied to the gate too, although it is a probability (as the original)."""
        valid = labels != -100
        present = (labels != self.config.background_id) & valid
        event_ids = torch.where(present, labels, torch.zeros_like(labels))
        video_labels = event_ids.max(dim=1).values  # the original: max over segments of the one-hot argmax
        target = present.to(is_event_logits.dtype)
        bce = nn.BCEWithLogitsLoss()
        return (
            bce(is_event_logits[valid], target[valid])
            + bce(audio_visual_gate[valid], target[valid])
            + F.cross_entropy(logits, video_labels)
            + F.cross_entropy(av_class_logits, video_labels)
        )

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DgSctEventLocalizationOutput | tuple:
        r"""
        input_values, pixel_values: see `DgSctModel.forward`.
        labels (`torch.LongTensor` of shape `(batch_size, num_segments)`, *optional*):
            Class id of every segment (background = `num_labels - 1`, -100 = padding); a clip has one event class.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self.dg_sct(
            input_values,
            pixel_values,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        visual, audio, gate = self.temporal_attention(encoded.visual_pooler_output, encoded.audio_pooler_output)
        is_event_logits, logits, av_class_logits = self.event_head(visual, audio)
        gate = gate.squeeze(-1)
        loss = None
        if labels is not None:
            if labels.shape != is_event_logits.shape:
                raise ValueError(
                    f"labels must be per-segment class ids of shape {tuple(is_event_logits.shape)}, "
                    f"got {tuple(labels.shape)}."
                )
            labels = labels.to(logits.device).long()
            invalid = labels[(labels != -100) & ((labels < 0) | (labels >= self.config.num_labels))]
            if invalid.numel():
                raise ValueError(
                    f"labels must be class ids in [0, {self.config.num_labels}) (background = "
                    f"{self.config.background_id}) or -100 for padding, got {invalid.unique().tolist()}."
                )
            loss = self.compute_loss(labels, is_event_logits, gate, logits, av_class_logits)
        output = DgSctEventLocalizationOutput(
            loss=loss,
            logits=logits,
            is_event_logits=is_event_logits,
            audio_visual_gate=gate,
            av_class_logits=av_class_logits,
            audio_pooler_output=encoded.audio_pooler_output,
            visual_pooler_output=encoded.visual_pooler_output,
            audio_hidden_states=encoded.audio_hidden_states,
            visual_hidden_states=encoded.visual_hidden_states,
            audio_attentions=encoded.audio_attentions,
            visual_attentions=encoded.visual_attentions,
        )
        return output if return_dict else output.to_tuple()
