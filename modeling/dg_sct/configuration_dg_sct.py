"""Configuration of DG-SCT (Duan et al., "Cross-modal Prompts: Adapting Large Pre-trained Models for Audio-Visual
Downstream Tasks", NeurIPS 2023)."""

from __future__ import annotations

from transformers import PreTrainedConfig, Swinv2Config

from ..common.configuration import strict_config
from ..common.htsat_adapter_host import HtsatConfig

__all__ = ["DgSctConfig", "DEFAULT_TRAINABLE_PARAMETERS"]

# The original (`AVE/main_trans.py`) trains the DG-SCT modules and the task head; both backbones stay frozen.
DEFAULT_TRAINABLE_PARAMETERS = ["*cross_modal_blocks.*", "temporal_attention.*", "event_head.*"]

LATENT_TOKEN_INITS = ("uniform", "zeros")
GUIDE_RESAMPLINGS = ("linear", "bicubic")
BACKGROUND_NAMES = ("background", "bg")

# Released AVE backbones: timm `swinv2_large_window12_192_22k` and the AudioSet HTS-AT.
SWINV2_LARGE_192 = dict(
    image_size=192,
    patch_size=4,
    embed_dim=192,
    depths=[2, 2, 18, 2],
    num_heads=[6, 12, 24, 48],
    window_size=12,
    pretrained_window_sizes=[0, 0, 0, 0],
    drop_path_rate=0.1,
)


def _paired_visual_blocks(visual_depth: int, audio_depth: int) -> list[int]:
    """Visual block index paired with each audio block of one stage: block i with block i when the depths are equal,
    else every `ratio`-th visual block ending with the last (the original's 18-vs-6 list: 2, 5, 8, 11, 14, 17)."""
    ratio = visual_depth // audio_depth
    return [(index + 1) * ratio - 1 for index in range(audio_depth)]


@strict_config
class DgSctConfig(PreTrainedConfig):
    r"""
    Configuration of DG-SCT (`DgSctModel`, `DgSctForAudioVisualEventLocalization`). Defaults are the released AVE
    model: a frozen Swin-V2-L (192 px, window 12) and a frozen AudioSet HTS-AT, with a DG-SCT module pair (one before
    the attention half, one before the MLP half of each paired block) in both directions for every audio block.

    Backbones:
        vision_config (`Swinv2Config` or `dict`, *optional*): the visual tower (Transformers' `Swinv2Model`).
        audio_config (`HtsatConfig` or `dict`, *optional*): the audio tower (Transformers' CLAP HTS-AT encoder),
            with its spectrogram front-end settings (see `HtsatConfig`).
        num_segments (`int`, defaults to 10): 1-second segments per clip (frame + audio each); every segment is
            encoded on its own, segments only meet in the task head.

    Block pairing: the towers have the same number of stages; in each stage the audio blocks are paired with
    visual blocks (`paired_visual_blocks`): the same index when the depths are equal, else every `ratio`-th
    visual block (stage 3 of the release: 18 Swin-V2 vs 6 HTS-AT blocks, pairs at 2, 5, 8, 11, 14, 17). Unpaired
    visual blocks run unmodified. The visual depth of a stage must be a multiple of its audio depth.

    DG-SCT modules (the original `VisualAdapter`, one class for both directions):
        num_latent_tokens (`int`, defaults to 32): learned latent tokens exchanging information between the
            modalities (`opt.num_tokens`).
        latent_token_init (`str`, defaults to `"uniform"`): fresh latent tokens ~ U[0, 1) (AVE/AVVP) or `"zeros"`
            (AVQA).
        adapter_reduction_factor (`int`, defaults to 8): bottleneck width = channels // factor
            (`opt.Adapter_downsample`).
        adapter_conv_groups (`int`, defaults to 2): groups of the bottleneck's 1x1 convolutions
            (`opt.num_conv_group`).
        adapter_batch_norm (`bool`, defaults to True): batch norm after both bottleneck convolutions (`opt.is_bn`).
        adapter_layer_norm_before (`bool`, defaults to True), adapter_layer_norm_after (`bool`, defaults to True):
            LayerNorm before / after the bottleneck (`opt.is_before_layernorm` / `opt.is_post_layernorm`).
        gate_audio_adapters (`bool`, defaults to True): multiply the audio-side modules' output by a zero-initialised
            gate (`opt.is_gate`); the visual-side modules are always gated, as in the original.
        channel_attention_weight (`float`, defaults to 0.3), spatial_attention_weight (`float`, defaults to 0.05):
            the re-weighting `x * (alpha * channel + beta * spatial + 1 - alpha)` (hard-coded alpha, beta in the
            original; 0.2 / 0.1 in its AVS-MS3 copy).
        guide_resampling (`str`, defaults to `"linear"`): how the other modality's tokens reach the own token grid:
            `"linear"` = a learned mix of all its tokens (`conv_adapter`, AVE/AVVP/AVQA), `"bicubic"` = its square
            token grid bicubically resized to the own grid after the channel projection (the AVS-S4 copy).
        gate_before_layer_norm (`bool`, defaults to False): multiply the bottleneck output by `gate` before the
            LayerNorm after it (the AVS-S4 copy) instead of after it.

    AVE head (`TemporalAttention` + `CMBS` of the original):
        temporal_audio_dim (`int`, defaults to 128): width of the audio projection (`a_fc`) before the audio LSTM.
        temporal_visual_dim (`int`, defaults to 512): width of the visual projection (`v_fc`); must be
            2 * `temporal_hidden_size` (the visual BiLSTM has hidden size `temporal_hidden_size`).
        temporal_hidden_size (`int`, defaults to 256): width of the temporal encoders/decoders (`d_model`).
        temporal_intermediate_size (`int`, defaults to 1024): their feed-forward width.
        temporal_num_attention_heads (`int`, defaults to 4): their heads.
        temporal_num_encoder_layers (`int`, defaults to 2), temporal_num_decoder_layers (`int`, defaults to 1).
        temporal_dropout (`float`, defaults to 0.1): dropout inside the temporal encoder/decoder layers.
        visual_projection_dropout (`float`, defaults to 0.2): dropout after the visual projection.
        temporal_gate_scale (`float`, defaults to 0.1): gamma of the cross-modal segment gates.
        class_activation_top_k (`int`, defaults to 4): segments averaged per class for `av_class_logits`.
        class_activation_weight (`float`, defaults to 0.3): weight of `av_class_logits` added to `event_logits`.
        id2label / label2id / num_labels: the event classes followed by background, which is the LAST label (AVE:
            28 events + background = 29, as the original's one-hot labels). The event classifiers have
            `num_labels - 1` outputs.

    Training:
        trainable_parameters (`list[str]`, *optional*): parameter-name globs that train (everything else is frozen
            by the training entry point); defaults to the DG-SCT modules and the task head, as the original.
        initializer_range (`float`, defaults to 0.02): std of freshly initialised linear layers.

    Example:

    ```python
    >>> from hf_av import DgSctConfig, DgSctForAudioVisualEventLocalization
    >>> config = DgSctConfig()  # released AVE architecture (Swin-V2-L + HTS-AT)
    >>> config.paired_visual_blocks[2]
    [2, 5, 8, 11, 14, 17]
    ```
    """

    model_type = "dg-sct"
    sub_configs_defaults = {"vision_config": Swinv2Config, "audio_config": HtsatConfig}

    vision_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    num_segments: int = 10
    num_latent_tokens: int = 32
    latent_token_init: str = "uniform"
    adapter_reduction_factor: int = 8
    adapter_conv_groups: int = 2
    adapter_batch_norm: bool = True
    adapter_layer_norm_before: bool = True
    adapter_layer_norm_after: bool = True
    gate_audio_adapters: bool = True
    channel_attention_weight: float = 0.3
    spatial_attention_weight: float = 0.05
    guide_resampling: str = "linear"
    gate_before_layer_norm: bool = False
    temporal_audio_dim: int = 128
    temporal_visual_dim: int = 512
    temporal_hidden_size: int = 256
    temporal_intermediate_size: int = 1024
    temporal_num_attention_heads: int = 4
    temporal_num_encoder_layers: int = 2
    temporal_num_decoder_layers: int = 1
    temporal_dropout: float = 0.1
    visual_projection_dropout: float = 0.2
    temporal_gate_scale: float = 0.1
    class_activation_top_k: int = 4
    class_activation_weight: float = 0.3
    trainable_parameters: list[str] | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = Swinv2Config(**SWINV2_LARGE_192)
        elif isinstance(self.vision_config, dict):
            self.vision_config = Swinv2Config(**{**SWINV2_LARGE_192, **self.vision_config})
        if self.audio_config is None:
            self.audio_config = HtsatConfig()
        elif isinstance(self.audio_config, dict):
            self.audio_config = HtsatConfig(**self.audio_config)
        if self.trainable_parameters is None:
            self.trainable_parameters = list(DEFAULT_TRAINABLE_PARAMETERS)
        if self.id2label is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = 29  # AVE: 28 events + background
        super().__post_init__(**kwargs)

    # -- derived ----------------------------------------------------------------------------------------------------
    @property
    def num_event_classes(self) -> int:
        return self.num_labels - 1

    @property
    def background_id(self) -> int:
        return self.num_labels - 1

    @property
    def paired_visual_blocks(self) -> list[list[int]]:
        return [
            _paired_visual_blocks(visual, audio)
            for visual, audio in zip(self.vision_config.depths, self.audio_config.depths)
        ]

    def validate_architecture(self):
        """Range and compatibility checks (run by Transformers after `__post_init__`)."""
        vision, audio = self.vision_config, self.audio_config
        if len(vision.depths) != len(audio.depths):
            raise ValueError(
                f"DgSctConfig: the visual tower has {len(vision.depths)} stages and the audio tower "
                f"{len(audio.depths)}; DG-SCT pairs the towers stage by stage, so they must be equal."
            )
        for stage, (visual_depth, audio_depth) in enumerate(zip(vision.depths, audio.depths)):
            if audio_depth < 1 or visual_depth % audio_depth != 0:
                raise ValueError(
                    f"DgSctConfig: stage {stage} has {visual_depth} visual and {audio_depth} audio blocks; the visual "
                    "depth must be a positive multiple of the audio depth to pair the blocks."
                )
        for stage in range(len(vision.depths)):
            widths = (("vision", vision.embed_dim * 2**stage), ("audio", audio.patch_embeds_hidden_size * 2**stage))
            for name, width in widths:
                if width % self.adapter_reduction_factor != 0 or (width // self.adapter_reduction_factor) < 1:
                    raise ValueError(
                        f"DgSctConfig.adapter_reduction_factor ({self.adapter_reduction_factor}) must divide the "
                        f"{name} width {width} of stage {stage}."
                    )
                bottleneck = width // self.adapter_reduction_factor
                if width % self.adapter_conv_groups or bottleneck % self.adapter_conv_groups:
                    raise ValueError(
                        f"DgSctConfig.adapter_conv_groups ({self.adapter_conv_groups}) must divide the {name} width "
                        f"{width} of stage {stage} and its bottleneck width {bottleneck}."
                    )
                if width < 2:
                    raise ValueError(f"DgSctConfig: the {name} width of stage {stage} must be >= 2, got {width}.")
        for name in (
            "num_segments",
            "num_latent_tokens",
            "temporal_audio_dim",
            "temporal_hidden_size",
            "temporal_intermediate_size",
            "temporal_num_attention_heads",
            "temporal_num_encoder_layers",
            "temporal_num_decoder_layers",
            "class_activation_top_k",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"DgSctConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.latent_token_init not in LATENT_TOKEN_INITS:
            raise ValueError(
                f"DgSctConfig.latent_token_init must be one of {LATENT_TOKEN_INITS}, got {self.latent_token_init!r}."
            )
        if self.guide_resampling not in GUIDE_RESAMPLINGS:
            raise ValueError(
                f"DgSctConfig.guide_resampling must be one of {GUIDE_RESAMPLINGS}, got {self.guide_resampling!r}."
            )
        if self.temporal_visual_dim != 2 * self.temporal_hidden_size:
            raise ValueError(
                f"DgSctConfig.temporal_visual_dim ({self.temporal_visual_dim}) must be 2 * temporal_hidden_size "
                f"({self.temporal_hidden_size}): the visual BiLSTM has hidden size temporal_hidden_size."
            )
        if self.temporal_hidden_size % 2:
            raise ValueError(
                f"DgSctConfig.temporal_hidden_size ({self.temporal_hidden_size}) must be even: the audio BiLSTM has "
                "hidden size temporal_hidden_size // 2."
            )
        if self.temporal_hidden_size % self.temporal_num_attention_heads:
            raise ValueError(
                f"DgSctConfig.temporal_hidden_size ({self.temporal_hidden_size}) must be divisible by "
                f"temporal_num_attention_heads ({self.temporal_num_attention_heads})."
            )
        if self.class_activation_top_k > self.num_segments:
            raise ValueError(
                f"DgSctConfig.class_activation_top_k ({self.class_activation_top_k}) must be <= num_segments "
                f"({self.num_segments})."
            )
        for name in ("temporal_dropout", "visual_projection_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"DgSctConfig.{name} must be in [0, 1), got {getattr(self, name)}.")
        if self.num_labels < 2:
            raise ValueError(f"DgSctConfig.num_labels ({self.num_labels}) must count at least one event + background.")
        misplaced = [
            (int(i), name) for i, name in (self.id2label or {}).items()
            if str(name).lower() in BACKGROUND_NAMES and int(i) != self.num_labels - 1
        ]
        if misplaced:
            raise ValueError(
                f"DgSctConfig: the background class must be the LAST label (id {self.num_labels - 1}; the event "
                f"classifiers cover ids 0..{self.num_labels - 2}), but id2label has {misplaced[0][1]!r} at id "
                f"{misplaced[0][0]}. Order the labels events first, background last (hf_av.data.LabelEncoder does "
                "so with background_label='background')."
            )
