"""Configurations of DG-SCT's other downstream tasks: audio-visual video parsing (AVVP / LLP), question answering
(MUSIC-AVQA) and segmentation (AVSBench). Each is a `DgSctConfig` (the same encoders and DG-SCT modules) with the
task head's settings added and the original task's DG-SCT module flags as defaults."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from .configuration_dg_sct import DgSctConfig

__all__ = [
    "DgSctQuestionAnsweringConfig",
    "DgSctSegmentationConfig",
    "DgSctVideoParsingConfig",
]


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


@strict
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
        if "num_labels" not in kwargs and "id2label" not in kwargs:
            kwargs["num_labels"] = 42
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
