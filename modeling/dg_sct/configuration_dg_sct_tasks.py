"""Configurations of DG-SCT's other downstream tasks: audio-visual video parsing (AVVP / LLP), question answering
(MUSIC-AVQA) and segmentation (AVSBench). Each is a `DgSctConfig` (the same encoders and DG-SCT modules) with the
task head's settings added and the original task's DG-SCT module flags as defaults."""

from __future__ import annotations

from ..common.configuration import strict_config
from .configuration_dg_sct import DgSctConfig

__all__ = [
    "DgSctQuestionAnsweringConfig",
    "DgSctSegmentationConfig",
    "DgSctVideoParsingConfig",
]


def _default_num_labels(config, kwargs: dict, default: int) -> None:
    """The task's label count unless given; a loaded config keeps its `id2label` (a dataclass field, so it is not
    in `kwargs`: the base config's own default would otherwise override it)."""
    if "num_labels" not in kwargs:
        kwargs["num_labels"] = len(config.id2label) if config.id2label is not None else default


def _check_positive(config, names):
    for name in names:
        value = getattr(config, name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(v < 1 for v in values):
            raise ValueError(f"{type(config).__name__}.{name} must be >= 1, got {value}.")


def _check_probability(config, names):
    for name in names:
        if not 0.0 <= getattr(config, name) < 1.0:
            raise ValueError(f"{type(config).__name__}.{name} must be in [0, 1), got {getattr(config, name)}.")


@strict_config
class DgSctQuestionAnsweringConfig(DgSctConfig):
    r"""
    Configuration of `DgSctForAudioVisualQuestionAnswering` (the original `AVQA/net_grd_avst/net_avst.py`
    `AVQA_Fusion_Net`, MUSIC-AVQA). Everything of `DgSctConfig` applies; the DG-SCT module defaults are the AVQA
    release flags (2 latent tokens initialised to zeros, no batch norm, ungated audio-side modules, 4 conv groups).
    The head works at the visual tower's output width (1536 for Swin-V2-L), as the original.

    Args:
        question_vocab_size (`int`, defaults to 93): question words (index 0 = `<pad>`), the original vocabulary
            built from the MUSIC-AVQA train json.
        question_max_length (`int`, defaults to 14): questions are right-padded to this many words.
        question_embedding_size (`int`, defaults to 1536): word embedding width.
        question_hidden_size (`int`, defaults to 1536): width of the one-layer question LSTM.
        qa_num_attention_heads (`int`, defaults to 4): heads of the question-guided temporal attentions.
        qa_dropout (`float`, defaults to 0.1): dropout of those attentions and their feed-forward residuals.
        match_hidden_sizes (`list[int]`, defaults to `[512, 256, 128]`): the audio-visual matching head's hidden
            widths (`fc1`..`fc3`; `fc4` outputs 2).
        match_loss_weight (`float`, defaults to 0.5): weight of the matching loss added to the answer loss.
        num_labels / id2label: the answer vocabulary (42 answers).
    """

    model_type = "dg-sct-avqa"

    num_latent_tokens: int = 2
    latent_token_init: str = "zeros"
    adapter_conv_groups: int = 4
    adapter_batch_norm: bool = False
    gate_audio_adapters: bool = False
    question_vocab_size: int = 93
    question_max_length: int = 14
    question_embedding_size: int = 1536
    question_hidden_size: int = 1536
    qa_num_attention_heads: int = 4
    qa_dropout: float = 0.1
    match_hidden_sizes: list[int] | None = None
    match_loss_weight: float = 0.5

    def __post_init__(self, **kwargs):
        if self.match_hidden_sizes is None:
            self.match_hidden_sizes = [512, 256, 128]
        if self.trainable_parameters is None:
            # The original trains the DG-SCT modules and the whole head; both backbones stay frozen.
            self.trainable_parameters = ["*cross_modal_blocks.*", "question_encoder.*", "answer_head.*"]
        _default_num_labels(self, kwargs, 42)
        super().__post_init__(**kwargs)

    @property
    def head_width(self) -> int:
        return self.vision_config.embed_dim * 2 ** (len(self.vision_config.depths) - 1)

    def validate_architecture(self):
        super().validate_architecture()
        _check_positive(
            self,
            ("question_vocab_size", "question_max_length", "question_embedding_size", "question_hidden_size",
             "qa_num_attention_heads", "match_hidden_sizes"),
        )
        _check_probability(self, ("qa_dropout",))
        if self.head_width % self.qa_num_attention_heads:
            raise ValueError(
                f"DgSctQuestionAnsweringConfig: the head width (visual output width {self.head_width}) must be "
                f"divisible by qa_num_attention_heads ({self.qa_num_attention_heads})."
            )


GROUP_ASSIGNMENTS = ("soft", "hard")


@strict_config
class DgSctVideoParsingConfig(DgSctConfig):
    r"""
    Configuration of `DgSctForAudioVisualVideoParsing` (the original `AVVP/nets/mgn.py` `MGN_Net`: weakly supervised
    audio-visual video parsing on LLP, 25 event classes). Everything of `DgSctConfig` applies (the AVVP release uses
    the AVE DG-SCT module flags); the head is the original's: projections of the pooled features, its temporal
    attention (only the visual result is used), fusion with precomputed 3-D clip features, and MGN's class-aware
    uni-modal and cross-modal grouping (Mo & Tian, "Multi-modal Grouping Network").

    Args:
        parsing_hidden_size (`int`, defaults to 128): width of the grouping network (`args.dim`).
        clip_feature_size (`int` or `None`, defaults to 512): width of the precomputed 3-D clip features
            (the original's R(2+1)D-18 `visual_st`), fused with the temporally attended visual segments by
            `fc_st` / `fc_fusion`. `None` builds the head without them: the temporally attended visual segments go
            on alone, so the model trains and infers from the video itself (not the original architecture;
            its checkpoints need 512).
        temporal_hidden_size (`int`, defaults to 64), temporal_intermediate_size (`int`, defaults to 1024),
        temporal_gate_scale (`float`, defaults to 0.05): the AVVP temporal attention (both BiLSTMs have hidden size
            `temporal_hidden_size`; encoders of 2 post-norm layers; segment gates scaled by gamma).
        grouping_num_attention_heads (`int`, defaults to 8): heads of the grouping transformer blocks.
        audio_grouping_depth (`int`, defaults to 3), visual_grouping_depth (`int`, defaults to 3),
        audio_visual_grouping_depth (`int`, defaults to 6): transformer blocks before each grouping.
        grouping_mlp_ratio (`float`, defaults to 4.0): MLP width ratio of those blocks and of the grouping MLPs.
        grouping_token_mlp_ratio (`float`, defaults to 0.5): hidden width (ratio of `parsing_hidden_size`) of the
            token-mixing MLP over the group axis.
        grouping_drop_path (`float`, defaults to 0.1): stochastic depth of the grouping transformer blocks.
        unimodal_assignment (`str`, defaults to `"soft"`), crossmodal_assignment (`str`, defaults to `"soft"`):
            `"soft"` (softmax over groups) or `"hard"` (Gumbel straight-through in training, one-hot in
            evaluation). The audio branch's cross-modal (HAN) step uses the opposite of `unimodal_assignment`, as
            the original.
        visual_label_smoothing (`float`, defaults to 0.1): the visual probabilities are trained towards
            `(1 - s) * y + s / 2` (the original's 0.9 y + 0.05).
        probability_clamp (`float`, defaults to 1e-7): probabilities are clamped to `[eps, 1 - eps]` in the loss.
        num_labels / id2label: the event classes (25 for LLP).
    """

    model_type = "dg-sct-avvp"

    temporal_hidden_size: int = 64
    temporal_visual_dim: int = 128
    temporal_gate_scale: float = 0.05
    parsing_hidden_size: int = 128
    clip_feature_size: int | None = 512
    grouping_num_attention_heads: int = 8
    audio_grouping_depth: int = 3
    visual_grouping_depth: int = 3
    audio_visual_grouping_depth: int = 6
    grouping_mlp_ratio: float = 4.0
    grouping_token_mlp_ratio: float = 0.5
    grouping_drop_path: float = 0.1
    unimodal_assignment: str = "soft"
    crossmodal_assignment: str = "soft"
    visual_label_smoothing: float = 0.1
    probability_clamp: float = 1e-7

    def __post_init__(self, **kwargs):
        if self.trainable_parameters is None:
            # The original freezes the two backbones and trains everything else.
            self.trainable_parameters = ["*cross_modal_blocks.*", "parsing_head.*"]
        _default_num_labels(self, kwargs, 25)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        super().validate_architecture()
        _check_positive(
            self,
            ("parsing_hidden_size", "grouping_num_attention_heads", "audio_grouping_depth",
             "visual_grouping_depth", "audio_visual_grouping_depth"),
        )
        if self.clip_feature_size is not None and self.clip_feature_size < 1:
            raise ValueError(
                f"DgSctVideoParsingConfig.clip_feature_size must be >= 1 or None (no clip features), got "
                f"{self.clip_feature_size}."
            )
        if self.parsing_hidden_size % self.grouping_num_attention_heads:
            raise ValueError(
                f"DgSctVideoParsingConfig.parsing_hidden_size ({self.parsing_hidden_size}) must be divisible by "
                f"grouping_num_attention_heads ({self.grouping_num_attention_heads})."
            )
        for name in ("unimodal_assignment", "crossmodal_assignment"):
            if getattr(self, name) not in GROUP_ASSIGNMENTS:
                raise ValueError(
                    f"DgSctVideoParsingConfig.{name} must be one of {GROUP_ASSIGNMENTS}, got {getattr(self, name)!r}."
                )
        _check_probability(self, ("grouping_drop_path", "visual_label_smoothing", "probability_clamp"))
        if int(self.grouping_token_mlp_ratio * self.parsing_hidden_size) < 1 or self.grouping_mlp_ratio <= 0:
            raise ValueError("DgSctVideoParsingConfig: the grouping MLP ratios must give widths >= 1.")


@strict_config
class DgSctSegmentationConfig(DgSctConfig):
    r"""
    Configuration of `DgSctForAudioVisualSegmentation` (the original `AVS/avs_scripts/avs_s4/model/PVT_AVSModel.py`
    `Pred_endecoder`: AVSBench sounding-object segmentation, 5 frames per clip). Everything of `DgSctConfig` applies;
    the DG-SCT module defaults are the S4 release flags: the other modality's token grid bicubically resized onto
    the own grid (`guide_resampling="bicubic"`), no LayerNorm before the bottleneck, the gate before the LayerNorm
    after it, 32 latent tokens initialised to zeros, no batch norm, ungated audio-side modules.

    Args:
        decoder_channels (`int`, defaults to 256): width of the multi-scale maps and the decoder (`channel`).
        feature_map_sizes (`list[int]`, defaults to `[56, 28, 14, 7]`): the four Swin-V2 stage maps are
            bicubically resized to these sizes (the PVT-v2 scales the AVSBench decoder expects); the masks come
            out at `4 * feature_map_sizes[0]` (224).
        audio_feature_size (`int`, defaults to 128): width of the projected audio feature (`audio_linear`).
        temporal_visual_fc_dim (`int`, defaults to 256): width of the per-scale visual projection of the temporal
            attention (`v_fc`); temporal_hidden_size (256), temporal_intermediate_size (1024) and
            temporal_gate_scale (0.05) as in `DgSctConfig`.
        fusion_stages (`list[int]`, defaults to `[0, 1, 2, 3]`): scales fused with the audio by TPAVI.
        mask_head_sizes (`list[int]`, defaults to `[128, 32]`): widths of the two 3x3 convolutions of the mask head.
    """

    model_type = "dg-sct-avs"

    num_segments: int = 5
    latent_token_init: str = "zeros"
    adapter_batch_norm: bool = False
    adapter_layer_norm_before: bool = False
    gate_audio_adapters: bool = False
    guide_resampling: str = "bicubic"
    gate_before_layer_norm: bool = True
    temporal_gate_scale: float = 0.05
    decoder_channels: int = 256
    feature_map_sizes: list[int] | None = None
    audio_feature_size: int = 128
    temporal_visual_fc_dim: int = 256
    fusion_stages: list[int] | None = None
    mask_head_sizes: list[int] | None = None

    def __post_init__(self, **kwargs):
        if self.feature_map_sizes is None:
            self.feature_map_sizes = [56, 28, 14, 7]
        if self.fusion_stages is None:
            self.fusion_stages = [0, 1, 2, 3]
        if self.mask_head_sizes is None:
            self.mask_head_sizes = [128, 32]
        if self.trainable_parameters is None:
            # The S4 original freezes only the Swin-V2 tower (its HTS-AT trains too).
            self.trainable_parameters = ["*cross_modal_blocks.*", "*audio_backbone.*", "segmentation_head.*"]
        _default_num_labels(self, kwargs, 2)  # background / sounding object
        super().__post_init__(**kwargs)

    @property
    def mask_size(self) -> int:
        return 4 * self.feature_map_sizes[0]

    def validate_architecture(self):
        super().validate_architecture()
        _check_positive(
            self, ("decoder_channels", "feature_map_sizes", "audio_feature_size", "temporal_visual_fc_dim", "mask_head_sizes")
        )
        stages = len(self.vision_config.depths)
        if len(self.feature_map_sizes) != stages:
            raise ValueError(
                f"DgSctSegmentationConfig.feature_map_sizes needs one size per visual stage ({stages}), got "
                f"{self.feature_map_sizes}."
            )
        if any(self.feature_map_sizes[i] != 2 * self.feature_map_sizes[i + 1] for i in range(stages - 1)):
            raise ValueError(
                "DgSctSegmentationConfig.feature_map_sizes must halve from stage to stage (the decoder upsamples by "
                f"2 per stage), got {self.feature_map_sizes}."
            )
        if any(stage not in range(stages) for stage in self.fusion_stages):
            raise ValueError(f"DgSctSegmentationConfig.fusion_stages must lie in [0, {stages}), got {self.fusion_stages}.")
        if len(self.mask_head_sizes) != 2:
            raise ValueError(f"DgSctSegmentationConfig.mask_head_sizes must hold 2 widths, got {self.mask_head_sizes}.")
        if self.decoder_channels < 2:
            raise ValueError("DgSctSegmentationConfig.decoder_channels must be >= 2 (TPAVI halves it).")
