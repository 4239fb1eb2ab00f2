"""Configuration of VATT (Akbari et al., "VATT: Transformers for Multimodal Self-Supervised Learning from Raw Video,
Audio and Text", NeurIPS 2021)."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from ..common.configuration import strict_config

BACKBONE_TYPES = ("modality_specific", "modality_agnostic")
VATT_MODALITIES = ("visual", "audio", "text")

_VIT_SIZES = {
    "base": {"video_hidden_size": 768, "video_num_hidden_layers": 12, "video_num_attention_heads": 12,
             "video_intermediate_size": 3072},
    "medium": {"video_hidden_size": 1024, "video_num_hidden_layers": 12, "video_num_attention_heads": 16,
               "video_intermediate_size": 4096},
    "large": {"video_hidden_size": 1024, "video_num_hidden_layers": 24, "video_num_attention_heads": 16,
              "video_intermediate_size": 4096},
}
_WAT_SIZES = {
    "base": {"audio_hidden_size": 768, "audio_num_hidden_layers": 12, "audio_num_attention_heads": 12,
             "audio_intermediate_size": 3072},
    "medium": {"audio_hidden_size": 1024, "audio_num_hidden_layers": 12, "audio_num_attention_heads": 16,
               "audio_intermediate_size": 4096},
}
_UT_SIZES = {
    "base": {"shared_hidden_size": 768, "shared_num_hidden_layers": 12, "shared_num_attention_heads": 12,
             "shared_intermediate_size": 3072},
    "medium": {"shared_hidden_size": 1024, "shared_num_hidden_layers": 12, "shared_num_attention_heads": 16,
               "shared_intermediate_size": 4096},
    "large": {"shared_hidden_size": 1024, "shared_num_hidden_layers": 24, "shared_num_attention_heads": 16,
              "shared_intermediate_size": 4096},
}
# Fine-tuning from the modality-agnostic checkpoint adds a GELU projection before and after the tower
# (`pre_projection=True, post_projection=True, d_post_proj=1024` in the original fine-tune configs).
_FROM_MA = {"pre_projection": True, "post_projection_size": 1024}

#: Released VATT variants (names of the checkpoint folders in the original README) as config overrides.
VATT_PRESETS: dict[str, dict[str, Any]] = {
    # pre-training checkpoints (`pretrain/<name>/ckpt-500000`)
    "tx_fac_bbs": {**_VIT_SIZES["base"], **_WAT_SIZES["base"]},
    "tx_fac_mbs": {**_VIT_SIZES["medium"], **_WAT_SIZES["base"]},
    "tx_fac_lbs": {**_VIT_SIZES["large"], **_WAT_SIZES["base"]},
    "ut_fac_medium": {"backbone_type": "modality_agnostic", **_UT_SIZES["medium"]},
    # fine-tuned classifiers (`finetune/<tower>/<dataset>_<pretrain kind>/ckpt-N`); set `num_labels` yourself
    "vit_base": {"modalities": ["visual"], **_VIT_SIZES["base"]},
    "vit_medium": {"modalities": ["visual"], **_VIT_SIZES["medium"]},
    "vit_large": {"modalities": ["visual"], **_VIT_SIZES["large"]},
    "vit_medium_from_ma": {
        "modalities": ["visual"], **_VIT_SIZES["medium"],
        **{f"video_{key}": value for key, value in _FROM_MA.items()},
    },
    "wat_base": {"modalities": ["audio"], **_WAT_SIZES["base"]},
    "wat_medium_from_ma": {
        "modalities": ["audio"], **_WAT_SIZES["medium"],
        **{f"audio_{key}": value for key, value in _FROM_MA.items()},
    },
}
VATT_PRESETS["bbs"] = VATT_PRESETS["tx_fac_bbs"]
VATT_PRESETS["mbs"] = VATT_PRESETS["tx_fac_mbs"]
VATT_PRESETS["lbs"] = VATT_PRESETS["tx_fac_lbs"]
VATT_PRESETS["ma_medium"] = VATT_PRESETS["ut_fac_medium"]


@strict_config
class VattConfig(PreTrainedConfig):
    r"""
    Configuration of the VATT models (`VattModel`, `VattForPreTraining`, `VattForVideoClassification`,
    `VattForAudioClassification`). The defaults are the released **VATT-BBS** (modality-specific ViT-Base video
    tower, WaT-Base raw-waveform audio tower, T5-Small text tower, FAC common-space heads). Other released variants
    come from :meth:`from_preset` (`"bbs"`, `"mbs"`, `"lbs"`, `"ma_medium"`, the classifier towers `"vit_base"`,
    `"vit_medium"`, `"vit_large"`, `"vit_medium_from_ma"`, `"wat_base"`, `"wat_medium_from_ma"`).

    Towers:
        backbone_type (`str`, defaults to `"modality_specific"`): `"modality_specific"` (one Transformer per modality,
            original `tx_fac`) or `"modality_agnostic"` (one Transformer shared by all modalities with per-modality
            tokenizers, projections, position tables and AGG tokens, original `ut_fac` / UniversalVATT).
        modalities (`list[str]`, *optional*): the towers this model holds, from `"visual"`, `"audio"`, `"text"`.
            Defaults to all three (pre-training). A fine-tuned video classifier holds `["visual"]` only.
        video_hidden_size / video_num_hidden_layers / video_num_attention_heads / video_intermediate_size
            (`int`, defaults 768 / 12 / 12 / 3072): the ViT-3D video tower (`vit_base`).
        video_num_frames (`int`, defaults to 32), video_image_size (`int`, defaults to 224): the clip the position
            tables were trained for; other sizes resample the tables (see `VattModel`).
        video_temporal_patch_size (`int`, defaults to 4), video_spatial_patch_size (`int`, defaults to 16): the
            Conv3D patch (`4 x 16 x 16` voxels per token).
        video_pre_projection (`bool`, defaults to `False`): GELU Linear on the patch tokens before the Transformer
            (towers fine-tuned from the modality-agnostic model).
        video_post_projection_size (`int`, *optional*): width of a GELU Linear on every output token (1024 for
            towers fine-tuned from the modality-agnostic model); `None` = no projection.
        audio_hidden_size / audio_num_hidden_layers / audio_num_attention_heads / audio_intermediate_size
            (`int`, defaults 768 / 12 / 12 / 3072): the WaT raw-waveform audio tower (`wat_base`).
        audio_num_samples (`int`, defaults to 153600): waveform length the position table was trained for
            (3.2 s at 48 kHz); audio_patch_size (`int`, defaults to 128): samples per token (Conv1D).
        audio_pre_projection (`bool`), audio_post_projection_size (`int`, *optional*): as for video.
        text_vocab_size (`int`, defaults to 65536), text_embedding_size (`int`, defaults to 300): the frozen
            word2vec table (converted from the checkpoint).
        text_max_length (`int`, defaults to 16): words per text (`max_num_words`); longer input is refused.
        text_hidden_size / text_num_hidden_layers / text_num_attention_heads / text_intermediate_size
            (`int`, defaults 512 / 6 / 8 / 2048): the T5-Small text encoder (`t5_small`).
        text_relative_attention_num_buckets (`int`, defaults to 32), text_relative_attention_max_distance
            (`int`, defaults to 64): the T5 relative position bias of the text encoder (first layer, reused).
        trainable_word_embeddings (`bool`, defaults to `False`): the word2vec table is frozen in the original.
        shared_hidden_size / shared_num_hidden_layers / shared_num_attention_heads / shared_intermediate_size
            (`int`, defaults 1024 / 12 / 16 / 4096): the modality-agnostic Transformer (`ut_medium`); only read
            when `backbone_type="modality_agnostic"`.
        shared_post_projection_size (`int`, defaults to 1024): per-modality GELU projection after the shared
            Transformer (`d_post_proj`).

    Shared by every Transformer:
        hidden_act (`str`, defaults to `"gelu"`): exact (erf) GELU, as `tf.keras.activations.gelu`.
        layer_norm_eps (`float`, defaults to 1e-6): every LayerNorm / RMSNorm (TF's value, not PyTorch's 1e-5).
        hidden_dropout_prob, attention_probs_dropout_prob (`float`, defaults 0.1): dropout (training only).
        drop_token_rate (`float`, defaults to 0.5): DropToken, the fraction of video / audio patch tokens removed
            in training (one random permutation shared by the batch; the original keeps
            `int((1 - rate) * number of position buckets)` tokens). 0 disables it; never applied in eval mode.
        initializer_range (`float`, defaults to 0.02): unused by the original initialisers, kept for Transformers.

    Common space (FAC heads) and pre-training losses:
        video_audio_projection_size (`int`, defaults to 512): the video-audio space (S_va).
        video_text_projection_size (`int`, defaults to 256): the video-text space (S_vt).
        batch_norm_eps (`float`, defaults to 1e-5), batch_norm_momentum (`float`, defaults to 0.1): the heads'
            BatchNorms (PyTorch momentum convention; TF's 0.9).
        contrastive_temperature (`float`, defaults to 0.07): NCE / MIL-NCE temperature.
        video_audio_loss_weight, video_text_loss_weight (`float`, defaults 1.0): the loss is the weighted mean.

    Classification:
        num_labels / id2label / label2id: standard Transformers fields.
        video_classifier_dropout_prob (`float`, defaults to 0.5), audio_classifier_dropout_prob (`float`,
            defaults to 0.0): dropout before the classifier (`cls_dropout_rate` of the original fine-tune configs).

    Example:

    ```python
    >>> from hf_av import VattConfig, VattModel

    >>> config = VattConfig()  # VATT-BBS
    >>> medium = VattConfig.from_preset("ma_medium")  # modality-agnostic VATT-MA-Medium
    >>> model = VattModel(config)
    ```
    """

    model_type = "vatt"

    backbone_type: str = "modality_specific"
    modalities: list[str] | None = None
    video_hidden_size: int = 768
    video_num_hidden_layers: int = 12
    video_num_attention_heads: int = 12
    video_intermediate_size: int = 3072
    video_num_frames: int = 32
    video_image_size: int = 224
    video_temporal_patch_size: int = 4
    video_spatial_patch_size: int = 16
    video_pre_projection: bool = False
    video_post_projection_size: int | None = None
    audio_hidden_size: int = 768
    audio_num_hidden_layers: int = 12
    audio_num_attention_heads: int = 12
    audio_intermediate_size: int = 3072
    audio_num_samples: int = 153600
    audio_patch_size: int = 128
    audio_pre_projection: bool = False
    audio_post_projection_size: int | None = None
    text_vocab_size: int = 65536
    text_embedding_size: int = 300
    text_max_length: int = 16
    text_hidden_size: int = 512
    text_num_hidden_layers: int = 6
    text_num_attention_heads: int = 8
    text_intermediate_size: int = 2048
    text_relative_attention_num_buckets: int = 32
    text_relative_attention_max_distance: int = 64
    trainable_word_embeddings: bool = False
    shared_hidden_size: int = 1024
    shared_num_hidden_layers: int = 12
    shared_num_attention_heads: int = 16
    shared_intermediate_size: int = 4096
    shared_post_projection_size: int = 1024
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    drop_token_rate: float | int = 0.5
    initializer_range: float = 0.02
    video_audio_projection_size: int = 512
    video_text_projection_size: int = 256
    batch_norm_eps: float = 1e-5
    batch_norm_momentum: float = 0.1
    contrastive_temperature: float = 0.07
    video_audio_loss_weight: float | int = 1.0
    video_text_loss_weight: float | int = 1.0
    video_classifier_dropout_prob: float | int = 0.5
    audio_classifier_dropout_prob: float | int = 0.0

    def __post_init__(self, **kwargs):
        if self.modalities is None:
            self.modalities = list(VATT_MODALITIES)
        else:
            self.modalities = list(self.modalities)
        super().__post_init__(**kwargs)

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # Transformers sets `from_pretrained(folder, field=value)` overrides on the built config without validating
        # them again; run the same `@strict` validation on the final values.
        result = super().from_dict(config_dict, **kwargs)
        (result[0] if isinstance(result, tuple) else result).validate()
        return result

    @classmethod
    def from_preset(cls, name: str, **overrides) -> VattConfig:
        """A config for a released VATT variant, e.g. `VattConfig.from_preset("mbs")`; `overrides` win."""
        key = name.lower().replace("-", "_")
        if key not in VATT_PRESETS:
            raise ValueError(f"Unknown VATT preset {name!r}; known presets: {sorted(VATT_PRESETS)}")
        return cls(**{**VATT_PRESETS[key], **overrides})

    # Derived sizes ---------------------------------------------------------------------------------------------------
    @property
    def is_modality_agnostic(self) -> bool:
        return self.backbone_type == "modality_agnostic"

    @property
    def video_position_buckets(self) -> tuple[int, int, int]:
        """Sizes of the temporal / vertical / horizontal position tables (8 / 14 / 14 for 32 x 224 x 224)."""
        spatial = self.video_image_size // self.video_spatial_patch_size
        return (self.video_num_frames // self.video_temporal_patch_size, spatial, spatial)

    @property
    def audio_position_buckets(self) -> int:
        """Size of the audio position table (1200 for 153600 samples in patches of 128)."""
        return self.audio_num_samples // self.audio_patch_size

    def tower_width(self, modality: str) -> int:
        """Width of the tokens a tower hands to the heads (after its post-projection, when it has one)."""
        if self.is_modality_agnostic:
            return self.shared_post_projection_size
        if modality == "visual":
            return self.video_post_projection_size or self.video_hidden_size
        if modality == "audio":
            return self.audio_post_projection_size or self.audio_hidden_size
        return self.text_hidden_size

    # Validation (run by @strict at construction and on every `from_pretrained`) -------------------------------------
    def validate_architecture(self):
        """Range, divisibility and vocabulary checks with messages naming the field (raised as
        `InvalidConfigError`, a `ValueError`)."""
        super().validate_architecture()

        def positive(*names: str) -> None:
            for name in names:
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"VattConfig.{name} must be a positive integer, got {value!r}")

        def probability(*names: str, inclusive_one: bool = True) -> None:
            for name in names:
                value = getattr(self, name)
                if not 0.0 <= value <= 1.0 or (not inclusive_one and value >= 1.0):
                    bound = "[0, 1]" if inclusive_one else "[0, 1)"
                    raise ValueError(f"VattConfig.{name} must be in {bound}, got {value!r}")

        if self.backbone_type not in BACKBONE_TYPES:
            raise ValueError(f"VattConfig.backbone_type must be one of {BACKBONE_TYPES}, got {self.backbone_type!r}")
        modalities = self.modalities or []
        unknown = [m for m in modalities if m not in VATT_MODALITIES]
        if not modalities or unknown or len(set(modalities)) != len(modalities):
            raise ValueError(
                f"VattConfig.modalities must be a non-empty list of distinct names from {VATT_MODALITIES}, got "
                f"{self.modalities!r}"
            )
        towers = ["shared"] if self.is_modality_agnostic else [
            {"visual": "video", "audio": "audio", "text": "text"}[m] for m in modalities
        ]
        for tower in towers:
            positive(f"{tower}_hidden_size", f"{tower}_num_hidden_layers", f"{tower}_num_attention_heads",
                     f"{tower}_intermediate_size")
            width, heads = getattr(self, f"{tower}_hidden_size"), getattr(self, f"{tower}_num_attention_heads")
            if width % heads != 0:
                raise ValueError(
                    f"VattConfig.{tower}_hidden_size ({width}) must be divisible by {tower}_num_attention_heads "
                    f"({heads})"
                )
        positive("video_num_frames", "video_image_size", "video_temporal_patch_size", "video_spatial_patch_size",
                 "audio_num_samples", "audio_patch_size", "text_vocab_size", "text_embedding_size",
                 "text_max_length", "text_relative_attention_num_buckets", "text_relative_attention_max_distance",
                 "shared_post_projection_size", "video_audio_projection_size", "video_text_projection_size")
        for size, patch in (("video_num_frames", "video_temporal_patch_size"),
                            ("video_image_size", "video_spatial_patch_size"),
                            ("audio_num_samples", "audio_patch_size")):
            if getattr(self, size) % getattr(self, patch) != 0:
                raise ValueError(
                    f"VattConfig.{size} ({getattr(self, size)}) must be a multiple of {patch} ({getattr(self, patch)})"
                )
        for name in ("video_post_projection_size", "audio_post_projection_size"):
            if getattr(self, name) is not None:
                positive(name)
        probability("hidden_dropout_prob", "attention_probs_dropout_prob", "video_classifier_dropout_prob",
                    "audio_classifier_dropout_prob")
        probability("drop_token_rate", inclusive_one=False)
        probability("batch_norm_momentum")
        for name in ("layer_norm_eps", "batch_norm_eps", "contrastive_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"VattConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("video_audio_loss_weight", "video_text_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"VattConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.video_audio_loss_weight + self.video_text_loss_weight <= 0:
            raise ValueError("VattConfig: at least one of video_audio_loss_weight / video_text_loss_weight must be > 0")
        if self.text_relative_attention_num_buckets < 4:
            raise ValueError(
                "VattConfig.text_relative_attention_num_buckets must be >= 4 (T5 bidirectional bucketing), got "
                f"{self.text_relative_attention_num_buckets}"
            )


__all__ = ["BACKBONE_TYPES", "VATT_MODALITIES", "VATT_PRESETS", "VattConfig"]
