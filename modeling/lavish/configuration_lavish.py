"""Configuration of LAVisH (Lin et al., "Vision Transformers are Parameter-Efficient Audio-Visual Learners",
CVPR 2023)."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..common.configuration import strict_config

__all__ = ["LavishConfig"]

# timm `swinv2_large_window12_192_22k`, the backbone of every LAVisH task (ImageNet-22k, 192 px)
SWINV2_LARGE_192 = {
    "image_size": 192,
    "patch_size": 4,
    "num_channels": 3,
    "embed_dim": 192,
    "depths": [2, 2, 18, 2],
    "num_heads": [6, 12, 24, 48],
    "window_size": 12,
    "pretrained_window_sizes": [0, 0, 0, 0],
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "drop_path_rate": 0.1,
}

LATENT_TOKEN_INITS = ("uniform", "zeros")
SUPPORTED_BACKBONES = ("swinv2",)


@strict_config
class LavishConfig(PreTrainedConfig):
    r"""
    Configuration of `LavishModel` and `LavishForAudioVisualEventLocalization`. The defaults are the AVE model of
    the paper (`AVE/README.md` flags of the original code): a frozen Swin-V2-L (192 px, window 12, ImageNet-22k)
    run on both the frames and the spectrogram image, four LAVisH adapters per block (reduction 8, 2 conv groups,
    2 latent tokens, BatchNorm, gates, LayerNorm before and after), and the AVE head (28 events + background per
    one-second segment). That is 10.0M trainable parameters (adapters 8.45M + head 1.59M) next to the frozen
    backbone's 195M (the original also carries timm's unused 21,841-class head, 33.6M).

    Backbone:
        backbone_config (`Swinv2Config` or `dict`, *optional*): the frozen backbone, Transformers' own Swin-V2
            (`model_type="swinv2"`). Defaults to Swin-V2-L 192 px (`microsoft/swinv2-large-patch4-window12-192-22k`
            on the Hub, timm `swinv2_large_window12_192_22k`). The paper's second backbone, ViT, is not ported
            (the original ViT path does not run as released, GenjiB/LAVISH#17): a ViT config is refused.
            `image_size` must be the size of both the frames and the spectrogram image (the original feeds both
            at 192 x 192 through the same patch embedding).
        timm_window_mask (`bool`, defaults to True): add the shifted-window mask as timm 0.6 (the original's Swin-V2)
            does, see `Swinv2AdapterHost`; False runs Transformers' Swin-V2 unchanged.

    Adapters (`VisualAdapter` of the original, one per block, stream and block half):
        adapter_reduction_factor (`int`, defaults to 8): bottleneck width = block width / this (`Adapter_downsample`).
        adapter_conv_groups (`int`, defaults to 2): groups of the bias-free 1x1 down/up convolutions
            (`num_conv_group`); must divide the block width and the bottleneck width.
        adapter_num_latent_tokens (`int`, defaults to 2): learned latent tokens that gather from the other
            modality (`num_tokens`).
        adapter_latent_token_init (`str`, defaults to `"uniform"`): initial latent tokens of a fresh model: U[0, 1)
            as in the original AVE code, or `"zeros"` as in its AVS / AVQA code.
        adapter_batch_norm (`bool`, defaults to True): BatchNorm after each convolution (`is_bn`).
        adapter_layernorm_before (`bool`, defaults to True): LayerNorm on the adapter input after the cross-modal
            fusion (`is_before_layernorm`).
        adapter_layernorm_after (`bool`, defaults to True): LayerNorm on the adapter output (`is_post_layernorm`).
        audio_adapter_gate (`bool`, defaults to True): scalar output gate on the audio adapters (`is_gate`); the
            visual adapters always have one. Gates start at 0, so a fresh model equals the frozen backbone.
        adapter_layer_norm_eps (`float`, defaults to 1e-5): epsilon of the adapter LayerNorms.
        adapter_batch_norm_eps (`float`, defaults to 1e-5), adapter_batch_norm_momentum (`float`, defaults to 0.1):
            BatchNorm settings (PyTorch defaults, as the original).

    Head (AVE event localisation):
        classifier_hidden_size (`int`, defaults to 512): width of the first head Linear (`mlp_class`); the second
            (`mlp_class_2`) maps it to `num_labels` with no activation in between, as the original.
        num_labels / id2label / label2id: 29 by default (28 AVE events + background). The AVE label order is that
            of the dataset's `labels.h5`; set `id2label` when fine-tuning (the pipeline finds the background class
            by the name "background").
        num_segments (`int`, defaults to 10): one-second segments per clip (frame `t` with audio second `t`). The
            model treats segments independently, as the original; this is the processor's default count.

    Training:
        trainable_parameters (`list[str]`, *optional*): glob patterns of the parameters that train, applied by the
            training entry point and by `from_pretrained_backbone` (`modeling.common.trainable.freeze_except`).
            Defaults to the adapters and the head (`["*adapter_blocks.*", "classifier.*"]`), as the original
            (names containing `adapter_blocks` / `mlp_class`). None trains everything.
        initializer_range (`float`, defaults to 0.02): unused by the adapters and the head (they use PyTorch's
            default initialisation, as the original); kept for Transformers' generic initialisation.

    Example:

    ```python
    >>> from modeling.lavish import LavishConfig, LavishForAudioVisualEventLocalization
    >>> from transformers import Swinv2Config

    >>> backbone = Swinv2Config(
    ...     image_size=32, patch_size=2, embed_dim=16, depths=[2, 2], num_heads=[1, 2], window_size=4
    ... )
    >>> config = LavishConfig(backbone_config=backbone, classifier_hidden_size=64)
    >>> model = LavishForAudioVisualEventLocalization(config)
    ```
    """

    model_type = "lavish"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="swinv2", init_kwargs=SWINV2_LARGE_192),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    timm_window_mask: bool = True
    adapter_reduction_factor: int = 8
    adapter_conv_groups: int = 2
    adapter_num_latent_tokens: int = 2
    adapter_latent_token_init: str = "uniform"
    adapter_batch_norm: bool = True
    adapter_layernorm_before: bool = True
    adapter_layernorm_after: bool = True
    audio_adapter_gate: bool = True
    adapter_layer_norm_eps: float = 1e-5
    adapter_batch_norm_eps: float = 1e-5
    adapter_batch_norm_momentum: float = 0.1
    classifier_hidden_size: int = 512
    num_segments: int = 10
    trainable_parameters: list[str] | tuple[str, ...] | None = ("*adapter_blocks.*", "classifier.*")
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        # a plain dict of Swin-V2 fields (no "model_type") is a Swin-V2 config: the only backbone ported
        if isinstance(self.backbone_config, dict) and "model_type" not in self.backbone_config:
            self.backbone_config = {**self.backbone_config, "model_type": "swinv2"}
        if self.id2label is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = 29
        if isinstance(self.trainable_parameters, tuple):
            self.trainable_parameters = list(self.trainable_parameters)
        super().__post_init__(**kwargs)

    @property
    def stage_hidden_sizes(self) -> list[int]:
        """Token width of every backbone stage."""
        return [self.backbone_config.embed_dim * 2**index for index in range(len(self.backbone_config.depths))]

    @property
    def block_hidden_sizes(self) -> list[int]:
        """Token width of every backbone block in order (one set of four adapters each)."""
        return [
            width
            for width, depth in zip(self.stage_hidden_sizes, self.backbone_config.depths)
            for _ in range(depth)
        ]

    @property
    def hidden_size(self) -> int:
        """Width of the backbone's last stage (each stream's pooled feature)."""
        return self.stage_hidden_sizes[-1]

    def validate_architecture(self):
        """Range and divisibility checks (run by `@strict` at construction and loading)."""
        backbone_type = getattr(self.backbone_config, "model_type", None)
        if backbone_type == "vit":
            raise ValueError(
                "LavishConfig: the ViT backbone of the paper is not ported (the original ViT path does not run as "
                "released, GenjiB/LAVISH#17); use a Swin-V2 backbone_config (model_type 'swinv2')."
            )
        if backbone_type not in SUPPORTED_BACKBONES:
            raise ValueError(
                f"LavishConfig.backbone_config must be a Swin-V2 config (model_type 'swinv2'), got {backbone_type!r}."
            )
        for name in ("adapter_reduction_factor", "adapter_conv_groups", "adapter_num_latent_tokens",
                     "classifier_hidden_size", "num_segments"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"LavishConfig.{name} must be an integer >= 1, got {value!r}.")
        if self.adapter_latent_token_init not in LATENT_TOKEN_INITS:
            raise ValueError(
                f"LavishConfig.adapter_latent_token_init must be one of {LATENT_TOKEN_INITS}, "
                f"got {self.adapter_latent_token_init!r}."
            )
        for width in sorted(set(self.stage_hidden_sizes)):
            bottleneck = width // self.adapter_reduction_factor
            if bottleneck < 1:
                raise ValueError(
                    f"LavishConfig.adapter_reduction_factor ({self.adapter_reduction_factor}) leaves no bottleneck "
                    f"channel for a backbone stage of width {width}."
                )
            if width % self.adapter_conv_groups or bottleneck % self.adapter_conv_groups:
                raise ValueError(
                    f"LavishConfig.adapter_conv_groups ({self.adapter_conv_groups}) must divide every stage width and "
                    f"its bottleneck width (width // adapter_reduction_factor); stage width {width} gives bottleneck "
                    f"{bottleneck}."
                )
        if self.trainable_parameters is not None and (
            isinstance(self.trainable_parameters, str) or not all(isinstance(p, str) for p in self.trainable_parameters)
        ):
            raise ValueError(
                f"LavishConfig.trainable_parameters must be a list of glob patterns or None, "
                f"got {self.trainable_parameters!r}."
            )
        if self.num_labels < 2:
            raise ValueError(f"LavishConfig.num_labels must be >= 2 (events + background), got {self.num_labels}.")
