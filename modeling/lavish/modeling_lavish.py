"""LAVisH: latent audio-visual hybrid adapters on a frozen Swin-V2 (Lin et al., CVPR 2023).

One frozen Swin-V2 (Transformers' own `Swinv2Model`, through `Swinv2AdapterHost`) runs over the frames and, with the
same weights, over the spectrogram image. Beside both halves of every block, each stream gets a LAVisH adapter that
first lets a few learned latent tokens gather from the OTHER modality, fuses them into its own tokens, then applies a
bottleneck (grouped 1x1 convolutions). Only the adapters and the head are trained. Numerics follow the original
`AVE/nets/net_trans.py` (GenjiB/LAVISH, `MMIL_Net.forward_swin` and `VisualAdapter`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, Swinv2Model
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

from ..common.swinv2_adapter_host import Swinv2AdapterHost
from .configuration_lavish import LavishConfig

logger = logging.get_logger(__name__)

__all__ = [
    "LavishAdapter",
    "LavishEventLocalizationOutput",
    "LavishForAudioVisualEventLocalization",
    "LavishModel",
    "LavishModelOutput",
    "LavishPreTrainedModel",
    "event_localization_loss",
]


@dataclass
class LavishModelOutput(ModelOutput):
    r"""
    Outputs of `LavishModel`. Segments are independent samples of the backbone: token-level fields are flattened to
    `batch_size * num_segments` rows (row `b * num_segments + t` is segment `t` of clip `b`), pooled fields keep
    `[batch_size, num_segments, ...]`.

    visual_last_hidden_state (`[B*T, num_tokens, hidden_size]`): frame tokens after the final LayerNorm.
    audio_last_hidden_state (`[B*T, num_tokens, hidden_size]`): spectrogram tokens after the final LayerNorm.
    pooler_output (`[B, T, 2 * hidden_size]`): `[visual mean token, audio mean token]` (visual first, as the original).
    visual_pooler_output, audio_pooler_output (`[B, T, hidden_size]`): the two halves of `pooler_output`.
    visual_hidden_states, audio_hidden_states (`tuple`, *optional*): the patch embeddings, then every stage's tokens
        before patch merging (`[B*T, tokens_i, width_i]`; the last one before the final LayerNorm).
    visual_attentions, audio_attentions (`tuple`, *optional*): window-attention probabilities of every backbone block
        (`[B*T*windows, heads, window_area, window_area]`).
    """

    visual_last_hidden_state: torch.Tensor | None = None
    audio_last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    visual_pooler_output: torch.Tensor | None = None
    audio_pooler_output: torch.Tensor | None = None
    visual_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    visual_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class LavishEventLocalizationOutput(ModelOutput):
    r"""
    Outputs of `LavishForAudioVisualEventLocalization`.

    loss (`torch.FloatTensor`, *optional*): the original's loss, binary cross-entropy of `probabilities` against the
        one-hot segment labels (returned when `labels` are given).
    logits (`[B, T, num_labels]`): per-segment class logits (the original's `mlp_class_2` output).
    probabilities (`[B, T, num_labels]`): `softmax(logits)`, what the original model returns and trains on.
    pooler_output (`[B, T, 2 * hidden_size]`): the fused features the head reads.
    visual_hidden_states, audio_hidden_states, visual_attentions, audio_attentions: as in `LavishModelOutput`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    visual_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    visual_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None


class LavishAdapter(nn.Module):
    """One LAVisH adapter (the original's multimodal "bottleneck" `VisualAdapter`).

    Given the stream being adapted `x` `[N, L, d]` and the other modality's tokens `o` `[N, L_o, d]`:

    1. latent tokens gather from the other modality: `z = z0 + softmax(z0 o^T) o` (softmax over `L_o`);
    2. the stream reads them: `x = x + fusion_gate * softmax(x z^T) z` (softmax over the latent tokens);
       single head, no projections and no 1/sqrt(d) scaling, as the original;
    3. bottleneck: [LayerNorm] -> grouped 1x1 conv down -> [BatchNorm] -> ReLU -> grouped 1x1 conv up ->
       [BatchNorm] -> [LayerNorm] -> [* gate].

    Returns the residual `[N, L, d]` that the caller adds to the stream. The convolutions run on the original's
    `[N, d, L, 1]` layout so the BatchNorm statistics are per channel over (batch, tokens) as there.
    """

    def __init__(self, config: LavishConfig, hidden_size: int, use_gate: bool):
        super().__init__()
        bottleneck = hidden_size // config.adapter_reduction_factor
        groups = config.adapter_conv_groups
        self.latent_tokens = nn.Parameter(torch.empty(config.adapter_num_latent_tokens, hidden_size))
        self.fusion_gate = nn.Parameter(torch.zeros(1))
        self.gate = nn.Parameter(torch.zeros(1)) if use_gate else None
        self.layernorm_before = (
            nn.LayerNorm(hidden_size, eps=config.adapter_layer_norm_eps) if config.adapter_layernorm_before else None
        )
        self.down_proj = nn.Conv2d(hidden_size, bottleneck, kernel_size=1, groups=groups, bias=False)
        self.up_proj = nn.Conv2d(bottleneck, hidden_size, kernel_size=1, groups=groups, bias=False)
        if config.adapter_batch_norm:
            bn_kwargs = {"eps": config.adapter_batch_norm_eps, "momentum": config.adapter_batch_norm_momentum}
            self.down_norm = nn.BatchNorm2d(bottleneck, **bn_kwargs)
            self.up_norm = nn.BatchNorm2d(hidden_size, **bn_kwargs)
        else:
            self.down_norm = self.up_norm = None
        self.activation = nn.ReLU()
        self.layernorm_after = (
            nn.LayerNorm(hidden_size, eps=config.adapter_layer_norm_eps) if config.adapter_layernorm_after else None
        )
        self.latent_token_init = config.adapter_latent_token_init

    def forward(self, hidden_states: torch.Tensor, other_states: torch.Tensor) -> torch.Tensor:
        latent = self.latent_tokens.unsqueeze(0).expand(hidden_states.shape[0], -1, -1)
        gathered = torch.softmax(torch.bmm(latent, other_states.transpose(1, 2)), dim=-1)
        latent = latent + torch.bmm(gathered, other_states)
        read = torch.softmax(torch.bmm(hidden_states, latent.transpose(1, 2)), dim=-1)
        hidden_states = hidden_states + self.fusion_gate * torch.bmm(read, latent)

        if self.layernorm_before is not None:
            hidden_states = self.layernorm_before(hidden_states)
        channels_first = hidden_states.transpose(1, 2).unsqueeze(-1)  # [N, d, L, 1]
        reduced = self.down_proj(channels_first)
        if self.down_norm is not None:
            reduced = self.down_norm(reduced)
        output = self.up_proj(self.activation(reduced))
        if self.up_norm is not None:
            output = self.up_norm(output)
        output = output.squeeze(-1).transpose(1, 2)
        if self.layernorm_after is not None:
            output = self.layernorm_after(output)
        if self.gate is not None:
            output = self.gate * output
        return output


class LavishAdapterBlock(GradientCheckpointingLayer):
    """The four adapters of one backbone block and the block's step for both streams.

    Order of the original (`forward_swin`): the attention-side adapters read both block inputs; each stream gets
    its attention half plus its adapter residual; the MLP-side adapters read both streams after BOTH attention
    updates; each stream gets its MLP half plus its adapter residual.
    """

    def __init__(self, config: LavishConfig, hidden_size: int):
        super().__init__()
        self.audio_attention_adapter = LavishAdapter(config, hidden_size, use_gate=config.audio_adapter_gate)
        self.visual_attention_adapter = LavishAdapter(config, hidden_size, use_gate=True)
        self.audio_mlp_adapter = LavishAdapter(config, hidden_size, use_gate=config.audio_adapter_gate)
        self.visual_mlp_adapter = LavishAdapter(config, hidden_size, use_gate=True)

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        *,
        host: Swinv2AdapterHost,
        layer: nn.Module,
        audio_dims: tuple[int, int],
        visual_dims: tuple[int, int],
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        audio_residual = self.audio_attention_adapter(audio, visual)
        visual_residual = self.visual_attention_adapter(visual, audio)
        visual, visual_attention = host.attention_half(layer, visual, visual_dims, output_attentions)
        visual = visual + visual_residual
        audio, audio_attention = host.attention_half(layer, audio, audio_dims, output_attentions)
        audio = audio + audio_residual

        audio_residual = self.audio_mlp_adapter(audio, visual)
        visual_residual = self.visual_mlp_adapter(visual, audio)
        visual = host.mlp_half(layer, visual) + visual_residual
        audio = host.mlp_half(layer, audio) + audio_residual
        return audio, visual, audio_attention, visual_attention


class LavishEventHead(nn.Module):
    """The AVE head: two Linears with NO activation between them (the original `mlp_class`, `mlp_class_2`)."""

    def __init__(self, config: LavishConfig):
        super().__init__()
        self.dense = nn.Linear(2 * config.hidden_size, config.classifier_hidden_size)
        self.out_proj = nn.Linear(config.classifier_hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dense(pooled))


def _pytorch_default_init(module: nn.Module) -> None:
    """`nn.Linear` / `nn.Conv2d` reset_parameters (what the original's modules start from), via Transformers' init."""
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        fan_in = module.weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(module.bias, -bound, bound)


def _reset_norm(module: nn.Module | None) -> None:
    if module is None:
        return
    init.ones_(module.weight)
    init.zeros_(module.bias)
    if isinstance(module, nn.BatchNorm2d):
        init.zeros_(module.running_mean)
        init.ones_(module.running_var)
        init.zeros_(module.num_batches_tracked)


class LavishPreTrainedModel(PreTrainedModel):
    config_class = LavishConfig
    base_model_prefix = "lavish"
    main_input_name = "input_values"
    input_modalities = ("audio", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LavishAdapterBlock", "Swinv2Stage"]
    # the backbone's modules are initialised by Swinv2Model's own `_init_weights` (a nested PreTrainedModel:
    # Transformers dispatches to it), so `_init_weights` below only ever sees the adapters and the head

    def _init_weights(self, module: nn.Module) -> None:
        # Leaf modules are initialised one by one: Transformers skips, for out-of-tree code, a module whose own
        # (non-recursive) parameters are all already initialised, e.g. a container such as the head.
        if isinstance(module, LavishAdapter):
            if module.latent_token_init == "uniform":
                init.uniform_(module.latent_tokens, 0.0, 1.0)  # torch.rand, as the original AVE code
            else:
                init.zeros_(module.latent_tokens)
            init.zeros_(module.fusion_gate)
            if module.gate is not None:
                init.zeros_(module.gate)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            _pytorch_default_init(module)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            _reset_norm(module)

    def trainable_parameter_patterns(self) -> list[str] | None:
        """`config.trainable_parameters` for this class: the base model has no head, so head patterns
        (`classifier...`) are left out for it; any other pattern must match (a misspelt one is an error later)."""
        patterns = self.config.trainable_parameters
        if patterns is None or not isinstance(self, LavishModel):
            return patterns
        return [pattern for pattern in patterns if not pattern.startswith("classifier")]

    @classmethod
    def from_pretrained_backbone(
        cls,
        backbone_name_or_path,
        config: LavishConfig | None = None,
        backbone_kwargs: dict | None = None,
        **config_kwargs,
    ):
        """Build a fresh LAVisH model around a pretrained Swin-V2, with only the adapters and the head trainable.

        This is how the paper's models start (the authors released no trained LAVisH weights): the backbone weights
        come from `Swinv2Model.from_pretrained(backbone_name_or_path, **backbone_kwargs)` (a `Swinv2Model` or
        `Swinv2ForImageClassification` folder or Hub id, e.g. `microsoft/swinv2-large-patch4-window12-192-22k`),
        adapters and head start from the original's initialisation (gates 0: the model equals the backbone), and
        `config.trainable_parameters` (default: adapters + head) is applied with
        `modeling.common.trainable.freeze_except`.

        Args:
            backbone_name_or_path: Swin-V2 folder or Hub id.
            config (`LavishConfig`, *optional*): adapter / head settings; its `backbone_config` is replaced by the
                pretrained backbone's.
            backbone_kwargs (`dict`, *optional*): extra arguments of `Swinv2Model.from_pretrained`.
            **config_kwargs: `LavishConfig` fields when `config` is not given (e.g. `num_labels`, `id2label`).

        Returns:
            The model; `model.trainable_report` holds the `TrainableReport` (trainable / total parameter counts),
            also logged. Example:

        ```python
        >>> model = LavishForAudioVisualEventLocalization.from_pretrained_backbone("path/to/swinv2-folder")
        >>> print(model.trainable_report.summary())
        ```
        """
        from ..common.trainable import freeze_except

        backbone = Swinv2Model.from_pretrained(backbone_name_or_path, **(backbone_kwargs or {}))
        backbone_config = backbone.config.to_dict()
        # the ImageNet classifier's labels (21,841 for the 22k checkpoints) mean nothing to LAVisH
        for key in ("id2label", "label2id", "architectures"):
            backbone_config.pop(key, None)
        if config is None:
            config = LavishConfig(backbone_config=backbone_config, **config_kwargs)
        else:
            if config_kwargs:
                raise ValueError("Pass LavishConfig fields either in `config` or as keyword arguments, not both.")
            config = LavishConfig.from_dict({**config.to_dict(), "backbone_config": backbone_config})
        model = cls(config)
        base = model if isinstance(model, LavishModel) else getattr(model, cls.base_model_prefix)
        base.backbone.swinv2.load_state_dict(backbone.state_dict(), strict=True)
        report = freeze_except(model, model.trainable_parameter_patterns())
        model.trainable_report = report
        logger.info("LAVisH from pretrained backbone %s: %s", backbone_name_or_path, report.summary())
        return model


def _split_segments(input_values: torch.Tensor, pixel_values: torch.Tensor, num_channels: int, image_size):
    """Check shapes and flatten segments into the batch: audio -> `[B*T, C, time, mel]`, frames -> `[B*T, C, H, W]`.

    Frames and spectrogram images must both be the backbone's `image_size`: the original (timm) refuses other sizes
    and the shifted-window masks are built for it.
    """
    if input_values is None or pixel_values is None:
        raise ValueError(
            "LAVisH needs both `input_values` (spectrograms) and `pixel_values` (frames): its adapters fuse the two "
            "streams in every block."
        )
    if input_values.ndim == 3:
        input_values = input_values.unsqueeze(1)
    if pixel_values.ndim == 4:
        pixel_values = pixel_values.unsqueeze(1)
    if input_values.ndim != 4:
        raise ValueError(
            f"Expected input_values of shape (batch, segments, time, mel_bins), got {tuple(input_values.shape)}."
        )
    if pixel_values.ndim != 5 or pixel_values.shape[2] != num_channels:
        raise ValueError(
            f"Expected pixel_values of shape (batch, segments, {num_channels}, height, width), "
            f"got {tuple(pixel_values.shape)}."
        )
    if input_values.shape[:2] != pixel_values.shape[:2]:
        raise ValueError(
            f"input_values and pixel_values must have the same (batch, segments): got {tuple(input_values.shape[:2])} "
            f"and {tuple(pixel_values.shape[:2])} (segment t of the audio pairs with frame t)."
        )
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if tuple(pixel_values.shape[-2:]) != (height, width):
        raise ValueError(
            f"Expected frames of {height}x{width} pixels (the backbone's image_size), "
            f"got {pixel_values.shape[-2]}x{pixel_values.shape[-1]}."
        )
    if tuple(input_values.shape[-2:]) != (height, width):
        raise ValueError(
            f"Got a spectrogram of {input_values.shape[-2]} frames x {input_values.shape[-1]} mel bins; expected "
            f"{height} frames x {width} mel bins (the backbone's image_size, what LavishFeatureExtractor produces)."
        )
    batch_size, num_segments = pixel_values.shape[:2]
    # the spectrogram is a one-channel image repeated to the backbone's channels (rows = time, columns = mel bins)
    audio = input_values.flatten(0, 1).unsqueeze(1).expand(-1, num_channels, -1, -1)
    return audio, pixel_values.flatten(0, 1), batch_size, num_segments


class LavishModel(LavishPreTrainedModel):
    """LAVisH encoder: the frozen Swin-V2 run over frames and spectrograms with LAVisH adapters in every block.

    Inputs: `input_values` `[B, T, time, mel_bins]` (normalised Kaldi fbank per segment, `LavishFeatureExtractor`)
    and `pixel_values` `[B, T, 3, H, W]` (one frame per segment, `LavishImageProcessor`). Both must be given.
    """

    def __init__(self, config: LavishConfig):
        super().__init__(config)
        self.config = config
        # The adapter blocks are registered first: each runs one whole backbone block for both streams and is the
        # layer gradient checkpointing recomputes. The backbone's own `Swinv2Stage` (also a checkpointing layer) is
        # never called as a whole, and tools that take a model's first checkpointing layer must find an active one.
        self.adapter_blocks = nn.ModuleList(
            LavishAdapterBlock(config, hidden_size) for hidden_size in config.block_hidden_sizes
        )
        self.backbone = Swinv2AdapterHost(
            model=Swinv2Model(config.backbone_config), timm_window_mask=config.timm_window_mask
        )
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.swinv2.get_input_embeddings()

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> LavishModelOutput | tuple:
        r"""
        input_values (`[B, T, time, mel_bins]`): normalised fbank per segment (`[B, time, mel_bins]` = one segment).
        pixel_values (`[B, T, 3, H, W]`): one frame per segment (`[B, 3, H, W]` = one segment).
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        host = self.backbone
        audio, frames, batch_size, num_segments = _split_segments(
            input_values, pixel_values, host.config.num_channels, host.config.image_size
        )

        # inputs follow the model's dtype (e.g. float32 features into a bfloat16 model)
        dtype = host.swinv2.embeddings.patch_embeddings.projection.weight.dtype
        visual, visual_dims = host.embed(frames.to(dtype))
        audio, audio_dims = host.embed(audio.to(dtype))
        visual_states = [visual] if output_hidden_states else None
        audio_states = [audio] if output_hidden_states else None
        visual_attentions = [] if output_attentions else None
        audio_attentions = [] if output_attentions else None

        block_index = 0
        for stage in host.iter_stages():
            for layer in stage.blocks:
                audio, visual, audio_attention, visual_attention = self.adapter_blocks[block_index](
                    audio,
                    visual,
                    host=host,
                    layer=layer,
                    audio_dims=audio_dims,
                    visual_dims=visual_dims,
                    output_attentions=output_attentions,
                )
                block_index += 1
                if output_attentions:
                    visual_attentions.append(visual_attention)
                    audio_attentions.append(audio_attention)
            if output_hidden_states:
                visual_states.append(visual)
                audio_states.append(audio)
            visual, visual_dims = host.downsample(stage, visual, visual_dims)
            audio, audio_dims = host.downsample(stage, audio, audio_dims)

        visual = host.final_norm(visual)
        audio = host.final_norm(audio)
        visual_pooled = visual.mean(dim=1).view(batch_size, num_segments, -1)
        audio_pooled = audio.mean(dim=1).view(batch_size, num_segments, -1)
        output = LavishModelOutput(
            visual_last_hidden_state=visual,
            audio_last_hidden_state=audio,
            pooler_output=torch.cat([visual_pooled, audio_pooled], dim=-1),
            visual_pooler_output=visual_pooled,
            audio_pooler_output=audio_pooled,
            visual_hidden_states=tuple(visual_states) if output_hidden_states else None,
            audio_hidden_states=tuple(audio_states) if output_hidden_states else None,
            visual_attentions=tuple(visual_attentions) if output_attentions else None,
            audio_attentions=tuple(audio_attentions) if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()


IGNORE_INDEX = -100


def event_localization_loss(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """The original AVE loss: `nn.BCELoss` of the softmax probabilities against one-hot segment labels.

    `labels` are class indices `[B, T]` (turned into one-hot; -100 marks a segment without a label, e.g. the padding
    of hf_av's collator, which is left out) or one-hot / multi-hot `[B, T, num_labels]`. Without
    `num_items_in_batch` the loss is the mean over the `segments x num_labels` entries, as the original. With it
    (passed by `Trainer` for gradient accumulation: the label entries of the whole optimisation step, i.e. labelled
    segments for index labels and segment x class entries for one-hot labels) it is the sum divided by the step's
    entry count, so the micro-batches add up to the full batch's mean.
    """
    num_labels = probabilities.shape[-1]
    if labels.dtype.is_floating_point:
        if labels.shape != probabilities.shape:
            raise ValueError(
                f"One-hot labels must have shape (batch, segments, num_labels) = {tuple(probabilities.shape)}, "
                f"got {tuple(labels.shape)}."
            )
        entries = nn.functional.binary_cross_entropy(probabilities, labels.to(probabilities.dtype), reduction="sum")
        count, entries_per_item = labels.numel(), 1
    else:
        if labels.shape != probabilities.shape[:-1]:
            raise ValueError(
                f"Class-index labels must have shape (batch, segments) = {tuple(probabilities.shape[:-1])}, "
                f"got {tuple(labels.shape)} (one label per segment: frame t with audio second t)."
            )
        labelled = labels != IGNORE_INDEX
        if ((labels[labelled] < 0) | (labels[labelled] >= num_labels)).any():
            raise ValueError(
                f"Class-index labels must be in [0, {num_labels}) or {IGNORE_INDEX} (no label), got values "
                f"{labels.min().item()}..{labels.max().item()}."
            )
        targets = nn.functional.one_hot(labels.clamp(min=0).long(), num_labels).to(probabilities.dtype)
        per_entry = nn.functional.binary_cross_entropy(probabilities, targets, reduction="none")
        entries = (per_entry * labelled.unsqueeze(-1).to(per_entry.dtype)).sum()
        count, entries_per_item = int(labelled.sum()) * num_labels, num_labels
    if num_items_in_batch is None:
        return entries / max(count, 1)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(probabilities.device)
    return entries / (num_items_in_batch * entries_per_item)


class LavishForAudioVisualEventLocalization(LavishPreTrainedModel):
    """LAVisH with the AVE head: every one-second segment (frame `t` + audio second `t`) is classified into the
    28 AVE events or background, independently, from `[visual mean token, audio mean token]` through two Linears.
    Returns `logits` and the original's output, `probabilities = softmax(logits)`; with `labels`, the original
    loss (binary cross-entropy of the probabilities against one-hot labels, see `event_localization_loss`).
    """

    # the loss honours `num_items_in_batch`, so Trainer's gradient accumulation is exact
    accepts_loss_kwargs = True

    def __init__(self, config: LavishConfig):
        super().__init__(config)
        self.lavish = LavishModel(config)
        self.classifier = LavishEventHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.lavish.get_input_embeddings()

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> LavishEventLocalizationOutput | tuple:
        r"""
        input_values (`[B, T, time, mel_bins]`): normalised fbank per segment.
        pixel_values (`[B, T, 3, H, W]`): one frame per segment.
        labels (`[B, T]` class indices or `[B, T, num_labels]` one-hot, *optional*): segment labels.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): label entries of the whole optimisation step
            (passed by `Trainer`); see `event_localization_loss`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.lavish(
            input_values,
            pixel_values,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output)
        probabilities = torch.softmax(logits, dim=-1)
        loss = None
        if labels is not None:
            loss = event_localization_loss(
                probabilities, labels.to(logits.device), num_items_in_batch=kwargs.get("num_items_in_batch")
            )
        output = LavishEventLocalizationOutput(
            loss=loss,
            logits=logits,
            probabilities=probabilities,
            pooler_output=outputs.pooler_output,
            visual_hidden_states=outputs.visual_hidden_states,
            audio_hidden_states=outputs.audio_hidden_states,
            visual_attentions=outputs.visual_attentions,
            audio_attentions=outputs.audio_attentions,
        )
        return output if return_dict else output.to_tuple()
