"""DG-SCT heads for the other downstream tasks of the paper, each on the same `DgSctModel` (frozen Swin-V2 and
HTS-AT with DG-SCT modules):

* `DgSctForAudioVisualVideoParsing`: AVVP on LLP (`AVVP/nets/mgn.py` `MGN_Net`, `AVVP/nets/grouping.py`).
* `DgSctForAudioVisualQuestionAnswering`: MUSIC-AVQA (`AVQA/net_grd_avst/net_avst.py` `AVQA_Fusion_Net`).
* `DgSctForAudioVisualSegmentation`: AVSBench S4 (`AVS/avs_scripts/avs_s4/model/PVT_AVSModel.py` `Pred_endecoder`,
  `model/TPAVI.py`).

Names follow the original modules; each class says which original function it reproduces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers.utils import ModelOutput

from transformers import initialization as init

from .configuration_dg_sct_tasks import (
    DgSctQuestionAnsweringConfig,
    DgSctSegmentationConfig,
    DgSctVideoParsingConfig,
)
from .modeling_dg_sct import DgSctModel, DgSctPreTrainedModel, DgSctTemporalStack

__all__ = [
    "DgSctForAudioVisualQuestionAnswering",
    "DgSctForAudioVisualSegmentation",
    "DgSctForAudioVisualVideoParsing",
    "DgSctQuestionAnsweringOutput",
    "DgSctSegmentationOutput",
    "DgSctVideoParsingOutput",
]


def _drop_path(hidden_states: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (identity in evaluation)."""
    if rate == 0.0 or not training:
        return hidden_states
    keep = 1.0 - rate
    mask = hidden_states.new_empty((hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)).bernoulli_(keep)
    return hidden_states * mask / keep


# ------------------------------------------------------------------------------------------------------------------
# Video parsing (AVVP / LLP): MGN grouping over the DG-SCT features
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class DgSctVideoParsingOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
        The original weak-label loss: BCE(global_probs, y) + BCE(audio_probs, y) + BCE(visual_probs, smoothed y)
        + CE(audio_class_token_logits, class ids) + CE(visual_class_token_logits, class ids), probabilities clamped.
    global_probs (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
        Video-level audio-visual event probabilities (the original `global_prob`); an event is in the video when
        >= 0.5.
    audio_probs, visual_probs (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
        Video-level probabilities of each modality (`a_prob`, `v_prob`).
    audio_frame_probs, visual_frame_probs (`torch.FloatTensor` of shape `(batch_size, num_segments, num_labels)`):
        Per-segment scores of each modality (`a_frame_prob`, `v_frame_prob`): the class probability times the
        grouping assignment map; the original marks a segment when >= 0.5 and the class is in the video.
    audio_class_token_logits, visual_class_token_logits (`torch.FloatTensor` of shape `(num_labels, num_labels)`):
        The classifier applied to the learned class tokens (`aud_cls_prob`, `vis_cls_prob`), trained towards the
        identity.
    audio_pooler_output, visual_pooler_output, audio_hidden_states, visual_hidden_states, audio_attentions,
    visual_attentions: as in `DgSctModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    global_probs: torch.FloatTensor | None = None
    audio_probs: torch.FloatTensor | None = None
    visual_probs: torch.FloatTensor | None = None
    audio_frame_probs: torch.FloatTensor | None = None
    visual_frame_probs: torch.FloatTensor | None = None
    audio_class_token_logits: torch.FloatTensor | None = None
    visual_class_token_logits: torch.FloatTensor | None = None
    audio_pooler_output: torch.FloatTensor | None = None
    visual_pooler_output: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None


class DgSctGroupingMlp(nn.Module):
    def __init__(self, in_features: int, hidden_features: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(hidden_states)))


class DgSctGroupingAttention(nn.Module):
    r"""Multi-head attention of the grouping network: fused `qkv` for self-attention (the original `AttnBlock`),
    separate `q_proj`/`k_proj`/`v_proj` for cross-attention (`CrossAttnBlock`)."""

    def __init__(self, width: int, num_heads: int, fused: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (width // num_heads) ** -0.5
        if fused:
            self.qkv = nn.Linear(width, 3 * width)
        else:
            self.q_proj = nn.Linear(width, width)
            self.k_proj = nn.Linear(width, width)
            self.v_proj = nn.Linear(width, width)
        self.proj = nn.Linear(width, width)

    def _heads(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view(tensor.shape[0], tensor.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
        if key is None:
            q, k, v = self.qkv(query).chunk(3, dim=-1)
        else:
            q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(key)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((weights @ v).transpose(1, 2).flatten(2))


class DgSctGroupingLayer(nn.Module):
    r"""Pre-norm transformer block over segments + group tokens (the original `AttnBlock`)."""

    def __init__(self, config: DgSctVideoParsingConfig):
        super().__init__()
        width = config.parsing_hidden_size
        self.drop_path = config.grouping_drop_path
        self.layernorm_before = nn.LayerNorm(width)
        self.attention = DgSctGroupingAttention(width, config.grouping_num_attention_heads, fused=True)
        self.layernorm_after = nn.LayerNorm(width)
        self.mlp = DgSctGroupingMlp(width, int(width * config.grouping_mlp_ratio), width)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + _drop_path(
            self.attention(self.layernorm_before(hidden_states)), self.drop_path, self.training
        )
        return hidden_states + _drop_path(self.mlp(self.layernorm_after(hidden_states)), self.drop_path, self.training)


class DgSctGroupingBlock(nn.Module):
    r"""Groups `num_inputs` tokens into `num_groups` group tokens (the original `GroupingBlock` and its copy
    `GroupingBlock_Han`): token-mixing MLP over the group axis, post-norm cross-attention of the groups to the
    tokens, single-head assignment attention (softmax over the GROUPS, then divided by row sum + 1), channel MLP.

    `hard`: one-hot assignment with a straight-through gradient (Gumbel noise in training), else softmax.
    Returns the new group tokens `[B, num_groups, C]`, the assignment actually used and the soft map
    (1 + softmax over the inputs of the group-softmaxed logits; the original's `attn_dict["soft"]`), both
    `[B, num_groups, num_inputs]`."""

    def __init__(self, config: DgSctVideoParsingConfig, num_group_tokens: int, num_groups: int, hard: bool):
        super().__init__()
        width = config.parsing_hidden_size
        self.hard = hard
        self.scale = width**-0.5
        self.norm_tokens = nn.LayerNorm(width)
        self.token_mlp = DgSctGroupingMlp(num_group_tokens, int(width * config.grouping_token_mlp_ratio), num_groups)
        self.norm_post_tokens = nn.LayerNorm(width)
        self.norm_inputs = nn.LayerNorm(width)
        # post-norm cross-attention block (the original `CrossAttnBlock(post_norm=True)`)
        self.cross_attention = DgSctGroupingAttention(width, config.grouping_num_attention_heads, fused=False)
        self.cross_attention_norm = nn.LayerNorm(width)
        self.cross_attention_mlp = DgSctGroupingMlp(width, width * 4, width)
        self.cross_attention_norm_post = nn.LayerNorm(width)
        self.assign_query = nn.Linear(width, width)
        self.assign_key = nn.Linear(width, width)
        self.assign_value = nn.Linear(width, width)
        self.assign_proj = nn.Linear(width, width)
        self.norm_new_tokens = nn.LayerNorm(width)
        self.channel_mlp = DgSctGroupingMlp(width, int(width * config.grouping_mlp_ratio), width)

    def _assignment(self, logits: torch.Tensor) -> torch.Tensor:
        if self.hard and self.training:
            return F.gumbel_softmax(logits, tau=1.0, hard=True, dim=-2)
        soft = torch.softmax(logits, dim=-2)
        if not self.hard:
            return soft
        one_hot = torch.zeros_like(soft).scatter_(-2, soft.argmax(dim=-2, keepdim=True), 1.0)
        return one_hot - soft.detach() + soft  # straight-through, evaluated literally as the original

    def forward(self, inputs: torch.Tensor, group_tokens: torch.Tensor):
        group_tokens = self.norm_tokens(group_tokens)
        inputs = self.norm_inputs(inputs)
        groups = self.norm_post_tokens(self.token_mlp(group_tokens.transpose(1, 2)).transpose(1, 2))
        groups = groups + self.cross_attention(groups, inputs)
        groups = self.cross_attention_norm_post(groups + self.cross_attention_mlp(self.cross_attention_norm(groups)))
        logits = (self.assign_query(groups) @ self.assign_key(inputs).transpose(1, 2)) * self.scale
        assignment = self._assignment(logits)
        soft_map = 1.0 + torch.softmax(torch.softmax(logits, dim=-2), dim=-1)
        weights = assignment / (assignment.sum(dim=-1, keepdim=True) + 1.0)
        new_tokens = self.assign_proj(weights @ self.assign_value(inputs)) + groups
        new_tokens = new_tokens + self.channel_mlp(self.norm_new_tokens(new_tokens))
        return new_tokens, assignment, soft_map


class DgSctModalityGrouping(nn.Module):
    r"""The original `ModalityTrans`: transformer blocks over `[tokens; group tokens]`, optionally a cross-modal
    grouping step of the tokens guided by another modality's segments (HAN, audio branch only), then grouping of
    the tokens into the group tokens."""

    def __init__(self, config: DgSctVideoParsingConfig, depth: int, hard: bool, cross_modal: bool):
        super().__init__()
        self.layers = nn.ModuleList([DgSctGroupingLayer(config) for _ in range(depth)])
        segments = config.num_segments
        self.cross_modal_grouping = DgSctGroupingBlock(config, segments, segments, not hard) if cross_modal else None
        self.grouping = DgSctGroupingBlock(config, config.num_labels, config.num_labels, hard)

    def forward(self, tokens: torch.Tensor, group_tokens: torch.Tensor, other: torch.Tensor | None = None):
        group_tokens = group_tokens.expand(tokens.shape[0], -1, -1)
        num_groups = group_tokens.shape[1]
        hidden_states = torch.cat([tokens, group_tokens], dim=1)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        tokens, group_tokens = hidden_states[:, :-num_groups], hidden_states[:, -num_groups:]
        if self.cross_modal_grouping is not None and other is not None:
            tokens = self.cross_modal_grouping(tokens, other)[0]
        return self.grouping(tokens, group_tokens)


class DgSctParsingTemporalAttention(nn.Module):
    r"""The AVVP `TemporalAttention`: BiLSTMs (both of hidden size `temporal_hidden_size`), a temporal encoder
    per modality and cross-modal segment gates: visual * (1 + gamma * audio gate), audio * (1 + gamma * visual
    gate). The original uses only the visual result."""

    def __init__(self, config: DgSctVideoParsingConfig):
        super().__init__()
        hidden, width = config.temporal_hidden_size, config.parsing_hidden_size
        self.gate_scale = config.temporal_gate_scale
        self.audio_rnn = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.visual_rnn = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.visual_encoder = DgSctTemporalStack(config, 2 * hidden, config.temporal_num_encoder_layers)
        self.audio_encoder = DgSctTemporalStack(config, 2 * hidden, config.temporal_num_encoder_layers)
        self.audio_gate = nn.Linear(hidden, 1)
        self.visual_gate = nn.Linear(hidden, 1)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor):
        audio_memory = self.audio_encoder(self.audio_rnn(audio)[0])
        visual_memory = self.visual_encoder(self.visual_rnn(visual)[0])
        audio_gate = torch.sigmoid(self.audio_gate(audio_memory))
        visual_gate = torch.sigmoid(self.visual_gate(visual_memory))
        return visual + audio_gate * visual * self.gate_scale, audio + visual_gate * audio * self.gate_scale


class DgSctParsingHead(nn.Module):
    r"""Everything of `MGN_Net` after the encoders."""

    def __init__(self, config: DgSctVideoParsingConfig):
        super().__init__()
        width = config.parsing_hidden_size
        visual_width = config.vision_config.embed_dim * 2 ** (len(config.vision_config.depths) - 1)
        audio_width = config.audio_config.patch_embeds_hidden_size * 2 ** (len(config.audio_config.depths) - 1)
        self.unimodal_hard = config.unimodal_assignment == "hard"
        self.audio_projection = nn.Linear(audio_width, width)
        self.visual_projection = nn.Linear(visual_width, width)
        self.temporal_attention = DgSctParsingTemporalAttention(config)
        # `clip_feature_size=None`: no 3-D clip features, the temporally attended visual segments go on alone
        self.uses_clip_features = config.clip_feature_size is not None
        if self.uses_clip_features:
            self.clip_projection = nn.Linear(config.clip_feature_size, width)
            self.fusion = nn.Linear(2 * width, width)
        self.audio_class_tokens = nn.Parameter(torch.zeros(config.num_labels, width))
        self.visual_class_tokens = nn.Parameter(torch.zeros(config.num_labels, width))
        self.audio_grouping = DgSctModalityGrouping(
            config, config.audio_grouping_depth, self.unimodal_hard, cross_modal=True
        )
        self.visual_grouping = DgSctModalityGrouping(
            config, config.visual_grouping_depth, self.unimodal_hard, cross_modal=False
        )
        self.audio_visual_grouping = DgSctModalityGrouping(
            config, config.audio_visual_grouping_depth, config.crossmodal_assignment == "hard", cross_modal=False
        )
        self.audio_visual_classifier = nn.Linear(width, 1)
        self.audio_classifier = nn.Linear(width, 1)
        self.visual_classifier = nn.Linear(width, 1)
        self.class_token_classifier = nn.Linear(width, config.num_labels)

    def forward(self, visual_pooled, audio_pooled, clip_features=None):
        audio = self.audio_projection(audio_pooled)
        visual, _ = self.temporal_attention(self.visual_projection(visual_pooled), audio)
        if self.uses_clip_features:
            visual = self.fusion(torch.cat([visual, self.clip_projection(clip_features)], dim=-1))
        visual_groups, visual_assignment, visual_soft = self.visual_grouping(visual, self.visual_class_tokens)
        # The audio branch groups the pre-attention audio features, with the fused visual segments as HAN guide.
        audio_groups, audio_assignment, audio_soft = self.audio_grouping(audio, self.audio_class_tokens, visual)
        joint_groups = self.audio_visual_grouping(audio_groups, visual_groups)[0]
        global_probs = torch.sigmoid(self.audio_visual_classifier(joint_groups)).squeeze(-1)
        audio_probs = torch.sigmoid(self.audio_classifier(audio_groups))  # [B, classes, 1]
        visual_probs = torch.sigmoid(self.visual_classifier(visual_groups))
        audio_map = audio_assignment if self.unimodal_hard else audio_soft
        visual_map = visual_assignment if self.unimodal_hard else visual_soft
        return (
            global_probs,
            audio_probs.squeeze(-1),
            visual_probs.squeeze(-1),
            (audio_probs * audio_map).transpose(1, 2),
            (visual_probs * visual_map).transpose(1, 2),
            self.class_token_classifier(self.audio_class_tokens),
            self.class_token_classifier(self.visual_class_tokens),
        )


class DgSctForAudioVisualVideoParsing(DgSctPreTrainedModel):
    r"""DG-SCT for weakly supervised audio-visual video parsing (AVVP on LLP): `DgSctModel` + the original MGN
    head. Trained with video-level (weak) labels; predicts video-level and per-segment events per modality."""

    config: DgSctVideoParsingConfig
    config_class = DgSctVideoParsingConfig

    def __init__(self, config: DgSctVideoParsingConfig):
        super().__init__(config)
        self.dg_sct = DgSctModel(config)
        self.parsing_head = DgSctParsingHead(config)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, DgSctParsingHead):
            init.zeros_(module.audio_class_tokens)
            init.zeros_(module.visual_class_tokens)

    def get_input_embeddings(self):
        return self.dg_sct.get_input_embeddings()

    def _video_labels(self, labels: torch.Tensor, batch_size: int, num_segments: int) -> torch.Tensor:
        num_labels = self.config.num_labels
        if labels.shape == (batch_size, num_labels):
            return labels
        if labels.ndim == 3 and labels.shape[0] == batch_size and labels.shape[2] == num_labels:
            if labels.shape[1] != num_segments:
                raise ValueError(
                    f"Segment labels cover {labels.shape[1]} segments but the clip has {num_segments}: labels must be "
                    f"(batch_size, {num_labels}) video-level or (batch_size, {num_segments}, {num_labels}) per segment."
                )
            return labels.amax(dim=1)  # the weak label: an event of any segment
        raise ValueError(
            f"labels must be multi-hot video-level labels of shape ({batch_size}, {num_labels}) or per-segment labels "
            f"({batch_size}, {num_segments}, {num_labels}), got {tuple(labels.shape)}."
        )

    def compute_loss(self, labels, global_probs, audio_probs, visual_probs, audio_token_logits, visual_token_logits):
        eps, smoothing = self.config.probability_clamp, self.config.visual_label_smoothing
        labels = labels.to(global_probs.dtype)

        def bce(probs, target):
            return F.binary_cross_entropy(probs.clamp(eps, 1 - eps), target)

        class_ids = torch.arange(self.config.num_labels, device=global_probs.device)
        return (
            bce(global_probs, labels)
            + bce(audio_probs, labels)
            + bce(visual_probs, (1 - smoothing) * labels + smoothing / 2)
            + F.cross_entropy(audio_token_logits, class_ids)
            + F.cross_entropy(visual_token_logits, class_ids)
        )

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        clip_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DgSctVideoParsingOutput | tuple:
        r"""
        input_values, pixel_values: see `DgSctModel.forward`.
        clip_features (`torch.FloatTensor` of shape `(batch_size, num_segments, clip_feature_size)`):
            Precomputed 3-D CNN features of every segment (the original's R(2+1)D-18 `visual_st`, 512-d; the LLP
            layout's `feats/r2plus1d_18/<video>.npy`, which the processor takes as `clip_features=`). Required
            unless `config.clip_feature_size` is `None`, refused then.
        labels (`torch.FloatTensor` of shape `(batch_size, num_labels)`, *optional*):
            Multi-hot video-level (weak) labels; per-segment labels `(batch_size, num_segments, num_labels)` are
            reduced to video level.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        clip_feature_size = self.config.clip_feature_size
        if clip_features is None and clip_feature_size is not None:
            raise ValueError(
                "DgSctForAudioVisualVideoParsing needs `clip_features`: this config (clip_feature_size="
                f"{clip_feature_size}, the original MGN_Net) fuses precomputed 3-D CNN features per segment, shape "
                f"(batch_size, num_segments, {clip_feature_size}) (the LLP `feats/r2plus1d_18/<video>.npy`; the "
                "processor takes them as `clip_features=`). A model built with `clip_feature_size=None` needs none."
            )
        if clip_features is not None and clip_feature_size is None:
            raise ValueError(
                "clip_features were given, but this DgSctForAudioVisualVideoParsing has no clip-feature fusion "
                "(config.clip_feature_size is None); leave them out."
            )
        encoded = self.dg_sct(
            input_values,
            pixel_values,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        batch_size, num_segments = encoded.visual_pooler_output.shape[:2]
        if clip_features is not None and clip_features.shape != (batch_size, num_segments, clip_feature_size):
            raise ValueError(
                f"clip_features must have shape ({batch_size}, {num_segments}, {clip_feature_size}) (batch, "
                f"segments, config.clip_feature_size), got {tuple(clip_features.shape)}."
            )
        if num_segments != self.config.num_segments:
            raise ValueError(
                f"The parsing head groups exactly {self.config.num_segments} segments (config.num_segments), "
                f"got {num_segments}."
            )
        probabilities = self.parsing_head(
            encoded.visual_pooler_output,
            encoded.audio_pooler_output,
            clip_features.to(self.dtype) if clip_features is not None else None,
        )
        loss = None
        if labels is not None:
            video_labels = self._video_labels(labels.to(probabilities[0].device), batch_size, num_segments)
            loss = self.compute_loss(video_labels, *probabilities[:3], *probabilities[5:])
        output = DgSctVideoParsingOutput(
            loss,
            *probabilities,
            audio_pooler_output=encoded.audio_pooler_output,
            visual_pooler_output=encoded.visual_pooler_output,
            audio_hidden_states=encoded.audio_hidden_states,
            visual_hidden_states=encoded.visual_hidden_states,
            audio_attentions=encoded.audio_attentions,
            visual_attentions=encoded.visual_attentions,
        )
        return output if return_dict else output.to_tuple()


# ------------------------------------------------------------------------------------------------------------------
# Question answering (MUSIC-AVQA)
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class DgSctQuestionAnsweringOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
        The original loss: CE(logits, labels) + `match_loss_weight` * CE(matching logits, 1 for the clip's own
        frames / 0 for the negative frames) (the matching term only when `negative_pixel_values` are given).
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
        Answer logits (the original `out_qa`).
    match_logits (`torch.FloatTensor` of shape `(batch_size, num_segments, 2)`):
        Audio-visual matching logits of every segment with its own frame (`out_match_posi`; class 1 = matching).
    negative_match_logits (`torch.FloatTensor` of shape `(batch_size, num_segments, 2)`, *optional*):
        The same for the negative frames (`out_match_nega`), when `negative_pixel_values` are given.
    question_embeds (`torch.FloatTensor` of shape `(batch_size, head_width)`):
        The question encoder's output.
    audio_pooler_output, visual_pooler_output, audio_hidden_states, visual_hidden_states, audio_attentions,
    visual_attentions: as in `DgSctModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    match_logits: torch.FloatTensor | None = None
    negative_match_logits: torch.FloatTensor | None = None
    question_embeds: torch.FloatTensor | None = None
    audio_pooler_output: torch.FloatTensor | None = None
    visual_pooler_output: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None


class DgSctQuestionEncoder(nn.Module):
    r"""The original `QstEncoder`: word embeddings -> tanh -> one-layer LSTM over the padded question (padding
    included, as the original) -> tanh(concat(last hidden, last cell)) -> linear."""

    def __init__(self, config: DgSctQuestionAnsweringConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.question_vocab_size, config.question_embedding_size)
        self.lstm = nn.LSTM(config.question_embedding_size, config.question_hidden_size, batch_first=True)
        self.projection = nn.Linear(2 * config.question_hidden_size, config.head_width)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embeddings = torch.tanh(self.word_embeddings(input_ids))
        _, (hidden, cell) = self.lstm(embeddings)  # each [1, B, H]
        state = torch.cat([hidden, cell], dim=-1).transpose(0, 1).flatten(1)
        return self.projection(torch.tanh(state))


class DgSctQuestionGuidedAttention(nn.Module):
    r"""The question attends over one modality's segment vectors, then a post-norm feed-forward residual (the
    original `attn_v` + `linear11/12` + `norm1`, or `attn_a` + `linear21/22` + `norm2`)."""

    def __init__(self, config: DgSctQuestionAnsweringConfig):
        super().__init__()
        width = config.head_width
        self.attention = nn.MultiheadAttention(width, config.qa_num_attention_heads, dropout=config.qa_dropout)
        self.intermediate = nn.Linear(width, width)
        self.output = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(config.qa_dropout)

    def forward(self, question: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        segments = segments.transpose(0, 1)  # sequence-first, as the original's attention
        attended = self.attention(question.unsqueeze(0), segments, segments, need_weights=False)[0].squeeze(0)
        feed_forward = self.output(self.dropout(F.relu(self.intermediate(attended))))
        return self.norm(attended + self.dropout(feed_forward))


class DgSctAnswerHead(nn.Module):
    r"""Everything of `AVQA_Fusion_Net` after the encoders: audio projection, audio-guided spatial grounding of the
    visual tokens, the audio-visual matching head, question-guided temporal attention and the answer classifier."""

    def __init__(self, config: DgSctQuestionAnsweringConfig):
        super().__init__()
        width = config.head_width
        audio_width = config.audio_config.patch_embeds_hidden_size * 2 ** (len(config.audio_config.depths) - 1)
        self.audio_projection_in = nn.Linear(audio_width, width)
        self.audio_projection_out = nn.Linear(width, width)
        self.grounding_projection = nn.Linear(2 * width, width)
        sizes = [2 * width, *config.match_hidden_sizes, 2]
        self.match_layers = nn.ModuleList([nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)])
        self.visual_attention = DgSctQuestionGuidedAttention(config)
        self.audio_attention = DgSctQuestionGuidedAttention(config)
        self.fusion = nn.Linear(2 * width, width)
        self.classifier = nn.Linear(width, config.num_labels)

    def ground(self, visual_tokens: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Visual tokens `[B', N, C]` attended by the audio vector `[B', C]` (cosine, softmax over positions),
        concatenated with their plain mean, then projected (`fc_gl`)."""
        normalized = F.normalize(visual_tokens, dim=-1)
        weights = torch.softmax(torch.bmm(normalized, F.normalize(audio, dim=-1).unsqueeze(-1)).squeeze(-1), dim=-1)
        grounded = torch.bmm(weights.unsqueeze(1), normalized).squeeze(1)
        return self.grounding_projection(torch.tanh(torch.cat([visual_tokens.mean(dim=1), grounded], dim=-1)))

    def match(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        hidden = torch.cat([audio, visual], dim=-1)
        for layer in self.match_layers[:-1]:
            hidden = F.relu(layer(hidden))
        return self.match_layers[-1](hidden)

    def forward(self, visual_tokens, audio_pooled, question, negative_visual_tokens=None):
        batch_size, num_segments = audio_pooled.shape[:2]
        audio = self.audio_projection_out(F.relu(self.audio_projection_in(audio_pooled)))  # [B, S, C]
        flat_audio = audio.flatten(0, 1)
        visual = self.ground(visual_tokens.flatten(0, 1), flat_audio)  # [B*S, C]
        match_logits = self.match(flat_audio, visual).view(batch_size, num_segments, 2)
        negative_match_logits = None
        if negative_visual_tokens is not None:
            negative = self.ground(negative_visual_tokens.flatten(0, 1), flat_audio)
            negative_match_logits = self.match(flat_audio, negative).view(batch_size, num_segments, 2)
        visual = visual.view(batch_size, num_segments, -1)
        visual_attended = self.visual_attention(question, visual) + visual.mean(dim=1)
        audio_attended = self.audio_attention(question, audio) + audio.mean(dim=1)
        fused = self.fusion(torch.tanh(torch.cat([audio_attended, visual_attended], dim=-1)))
        logits = self.classifier(torch.tanh(fused * question))
        return logits, match_logits, negative_match_logits


class DgSctForAudioVisualQuestionAnswering(DgSctPreTrainedModel):
    r"""DG-SCT for audio-visual question answering (MUSIC-AVQA): `DgSctModel` + the original question encoder and
    AVST answer head. The answer is `logits.argmax(-1)` (an index into `config.id2label`)."""

    config: DgSctQuestionAnsweringConfig
    config_class = DgSctQuestionAnsweringConfig

    def __init__(self, config: DgSctQuestionAnsweringConfig):
        super().__init__(config)
        self.dg_sct = DgSctModel(config)
        self.question_encoder = DgSctQuestionEncoder(config)
        self.answer_head = DgSctAnswerHead(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.dg_sct.get_input_embeddings()

    def _check_question(self, input_ids: torch.Tensor | None, batch_size: int | None) -> None:
        if input_ids is None:
            raise ValueError("DgSctForAudioVisualQuestionAnswering needs the question token ids `input_ids`.")
        if input_ids.ndim != 2 or (batch_size is not None and input_ids.shape[0] != batch_size):
            raise ValueError(
                f"input_ids must be question token ids of shape (batch_size={batch_size}, words), "
                f"got {tuple(input_ids.shape)}."
            )
        if input_ids.shape[1] > self.config.question_max_length:
            raise ValueError(
                f"The question has {input_ids.shape[1]} tokens; the model takes at most "
                f"{self.config.question_max_length} (config.question_max_length)."
            )
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.question_vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, {self.config.question_vocab_size}) (config.question_vocab_size), got "
                f"values in [{int(input_ids.min())}, {int(input_ids.max())}]."
            )

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        negative_pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DgSctQuestionAnsweringOutput | tuple:
        r"""
        input_values, pixel_values: see `DgSctModel.forward`.
        input_ids (`torch.LongTensor` of shape `(batch_size, question_length)`):
            Question word ids (`DgSctQuestionTokenizer`), right-padded with 0; at most `question_max_length`.
        negative_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_segments, 3, height, width)`, *optional*):
            Frames of other clips, encoded by the plain visual tower (no DG-SCT modules), for the matching loss.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): answer ids.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        reference = pixel_values if pixel_values is not None else input_values
        self._check_question(input_ids, reference.shape[0] if reference is not None else None)
        encoded = self.dg_sct(
            input_values,
            pixel_values,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        negative_tokens = None
        if negative_pixel_values is not None:
            if negative_pixel_values.shape != pixel_values.shape:
                raise ValueError(
                    f"negative_pixel_values must have the shape of pixel_values {tuple(pixel_values.shape)}, "
                    f"got {tuple(negative_pixel_values.shape)}."
                )
            # The original encodes the negatives with the plain Swin-V2 (no DG-SCT modules) and no gradient.
            with torch.no_grad():
                frames = negative_pixel_values.flatten(0, 1).to(self.dtype)
                negative_tokens = self.dg_sct.visual_backbone(frames).last_hidden_state
            negative_tokens = negative_tokens.view(*negative_pixel_values.shape[:2], *negative_tokens.shape[1:])
        question = self.question_encoder(input_ids.to(encoded.visual_last_hidden_state.device))
        logits, match_logits, negative_match_logits = self.answer_head(
            encoded.visual_last_hidden_state, encoded.audio_pooler_output, question, negative_tokens
        )
        loss = None
        if labels is not None:
            labels = labels.to(logits.device).long()
            if labels.shape != logits.shape[:1]:
                raise ValueError(
                    f"labels must be one answer id per clip, shape ({logits.shape[0]},), got {tuple(labels.shape)}."
                )
            outside = labels[(labels < 0) | (labels >= self.config.num_labels)]
            if outside.numel():
                raise ValueError(
                    f"labels must be answer ids in [0, {self.config.num_labels}) (the answer vocabulary, "
                    f"config.id2label), got {outside.tolist()}."
                )
            loss = F.cross_entropy(logits, labels)
            if negative_match_logits is not None:
                pairs = torch.cat([match_logits.flatten(0, 1), negative_match_logits.flatten(0, 1)])
                targets = torch.cat(
                    [
                        torch.ones(match_logits.shape[0] * match_logits.shape[1], dtype=torch.long),
                        torch.zeros(match_logits.shape[0] * match_logits.shape[1], dtype=torch.long),
                    ]
                ).to(pairs.device)
                loss = loss + self.config.match_loss_weight * F.cross_entropy(pairs, targets)
        output = DgSctQuestionAnsweringOutput(
            loss=loss,
            logits=logits,
            match_logits=match_logits,
            negative_match_logits=negative_match_logits,
            question_embeds=question,
            audio_pooler_output=encoded.audio_pooler_output,
            visual_pooler_output=encoded.visual_pooler_output,
            audio_hidden_states=encoded.audio_hidden_states,
            visual_hidden_states=encoded.visual_hidden_states,
            audio_attentions=encoded.audio_attentions,
            visual_attentions=encoded.visual_attentions,
        )
        return output if return_dict else output.to_tuple()


# ------------------------------------------------------------------------------------------------------------------
# Segmentation (AVSBench S4): multi-scale visual maps, temporal attention, TPAVI audio fusion, FPN-style decoder
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class DgSctSegmentationOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
        Binary cross-entropy of the mask logits against the ground-truth masks (S4: the first frame of each clip).
    logits (`torch.FloatTensor` of shape `(batch_size, num_segments, mask_size, mask_size)`):
        Sounding-object mask logits per frame (the original `pred`, 224 x 224); resize to the image with
        `DgSctSegmentationImageProcessor.post_process_masks`.
    feature_maps (`tuple(torch.FloatTensor)`, one per scale, `(batch_size, num_segments, decoder_channels, size,
    size)`):
        The decoder inputs after the temporal attention and TPAVI audio fusion, rectified: the original returns its
        `feature_map_list` after the decoder's in-place ReLU.
    audio_features (`tuple(torch.FloatTensor)`, one per fused scale, `(batch_size, num_segments,
    decoder_channels)`): TPAVI's projected audio (the original `a_fea_list`).
    audio_pooler_output, visual_pooler_output, audio_hidden_states, visual_hidden_states, audio_attentions,
    visual_attentions: as in `DgSctModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    feature_maps: tuple[torch.FloatTensor, ...] | None = None
    audio_features: tuple[torch.FloatTensor, ...] | None = None
    audio_pooler_output: torch.FloatTensor | None = None
    visual_pooler_output: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None


class DgSctSegmentationTemporalBranch(nn.Module):
    r"""One scale of the AVS `TemporalAttention`: spatially pooled map -> projection -> BiLSTMs (audio of hidden
    size `temporal_hidden_size // 2`, visual `temporal_hidden_size`) -> temporal encoders -> segment gates. (The
    original also runs cross-modal decoders whose results it never uses; they are left out.)"""

    def __init__(self, config: DgSctSegmentationConfig):
        super().__init__()
        hidden = config.temporal_hidden_size
        self.visual_projection = nn.Linear(config.decoder_channels, config.temporal_visual_fc_dim)
        self.dropout = nn.Dropout(config.visual_projection_dropout)
        self.audio_rnn = nn.LSTM(config.audio_feature_size, hidden // 2, batch_first=True, bidirectional=True)
        self.visual_rnn = nn.LSTM(config.temporal_visual_fc_dim, hidden, batch_first=True, bidirectional=True)
        self.visual_encoder = DgSctTemporalStack(config, 2 * hidden, config.temporal_num_encoder_layers)
        self.audio_encoder = DgSctTemporalStack(config, hidden, config.temporal_num_encoder_layers)
        self.audio_gate = nn.Linear(hidden, 1)
        self.visual_gate = nn.Linear(hidden, 1)

    def forward(self, feature_map: torch.Tensor, audio: torch.Tensor):
        """`feature_map` `[B*T, C, h, w]`, `audio` `[B, T, A]` -> (audio gate, visual gate), each `[B, T, 1]`."""
        batch_size, num_segments = audio.shape[:2]
        pooled = feature_map.mean(dim=(2, 3)).view(batch_size, num_segments, -1)
        visual = self.dropout(F.relu(self.visual_projection(pooled)))
        audio_memory = self.audio_encoder(self.audio_rnn(audio)[0])
        visual_memory = self.visual_encoder(self.visual_rnn(visual)[0])
        return torch.sigmoid(self.audio_gate(audio_memory)), torch.sigmoid(self.visual_gate(visual_memory))


class DgSctSegmentationTemporalAttention(nn.Module):
    r"""The AVS `TemporalAttention`: every scale's map is scaled per frame by its audio gate,
    `map * (1 + gamma * audio_gate)`, and the audio by the mean of the scales' visual gates."""

    def __init__(self, config: DgSctSegmentationConfig):
        super().__init__()
        self.gate_scale = config.temporal_gate_scale
        self.branches = nn.ModuleList(
            [DgSctSegmentationTemporalBranch(config) for _ in range(len(config.feature_map_sizes))]
        )

    def forward(self, feature_maps: list[torch.Tensor], audio: torch.Tensor):
        gates = [branch(feature_map, audio) for branch, feature_map in zip(self.branches, feature_maps)]
        rows = audio.shape[0] * audio.shape[1]
        attended = []
        for feature_map, (audio_gate, _) in zip(feature_maps, gates):
            audio_gate = audio_gate.reshape(rows, 1, 1, 1)
            attended.append(feature_map + audio_gate * feature_map * self.gate_scale)
        visual_gate = sum(gate for _, gate in gates) / len(gates)
        flat_audio = audio.reshape(rows, -1)
        flat_audio = flat_audio + visual_gate.reshape(rows, 1) * flat_audio * self.gate_scale
        return attended, flat_audio.view_as(audio)


class DgSctAudioVisualFusion(nn.Module):
    r"""TPAVI ('dot' mode, the original `TPAVIModule`): every position of the clip's `[C, T, H, W]` maps attends to
    the projected audio broadcast over space, with affinities divided by the number of positions (no softmax);
    output `LayerNorm_C(x + BN(W(y)))`. Computed as `theta (phi^T g) / N` instead of `(theta phi^T / N) g`: the
    same product without the `(T H W)^2` affinity matrix."""

    def __init__(self, config: DgSctSegmentationConfig):
        super().__init__()
        channels = config.decoder_channels
        inner = max(channels // 2, 1)
        self.audio_projection = nn.Linear(config.audio_feature_size, channels)
        self.query = nn.Conv3d(channels, inner, 1)
        self.key = nn.Conv3d(channels, inner, 1)
        self.value = nn.Conv3d(channels, inner, 1)
        self.output = nn.Conv3d(inner, channels, 1)
        self.output_norm = nn.BatchNorm3d(channels)
        self.layer_norm = nn.LayerNorm(channels)

    def forward(self, feature_map: torch.Tensor, audio: torch.Tensor):
        """`feature_map` `[B, C, T, H, W]`, `audio` `[B, T, A]` -> (fused map `[B, C, T, H, W]`, projected audio)."""
        projected_audio = self.audio_projection(audio)  # [B, T, C]
        height, width = feature_map.shape[-2:]
        audio_map = projected_audio.transpose(1, 2)[..., None, None].expand(-1, -1, -1, height, width)
        query = self.query(feature_map).flatten(2).transpose(1, 2)  # [B, THW, C']
        key = self.key(audio_map).flatten(2)  # [B, C', THW]
        value = self.value(feature_map).flatten(2).transpose(1, 2)  # [B, THW, C']
        attended = query @ (key @ value) / key.shape[-1]
        attended = attended.transpose(1, 2).reshape(*attended.shape[:1], -1, *feature_map.shape[2:])
        fused = self.output_norm(self.output(attended)) + feature_map
        return self.layer_norm(fused.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3), projected_audio


class DgSctResidualConvUnit(nn.Module):
    r"""ReLU -> conv3x3 -> ReLU -> conv3x3, plus the rectified input (the original's in-place ReLU also rectifies
    its skip connection)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        rectified = F.relu(hidden_states)
        return self.conv2(F.relu(self.conv1(rectified))) + rectified


class DgSctFeatureFusionBlock(nn.Module):
    r"""The AVSBench decoder step (`FeatureFusionBlock`): add the refined skip map, refine, upsample x2."""

    def __init__(self, channels: int, with_skip: bool = True):
        super().__init__()
        # the deepest block has no skip input (the original builds its unit anyway, unused)
        self.skip_unit = DgSctResidualConvUnit(channels) if with_skip else None
        self.output_unit = DgSctResidualConvUnit(channels)

    def forward(self, hidden_states: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            hidden_states = hidden_states + self.skip_unit(skip)
        hidden_states = self.output_unit(hidden_states)
        return F.interpolate(hidden_states, scale_factor=2, mode="bilinear", align_corners=True)


class DgSctSegmentationHead(nn.Module):
    r"""Everything of `Pred_endecoder` after the encoders."""

    def __init__(self, config: DgSctSegmentationConfig):
        super().__init__()
        channels = config.decoder_channels
        widths = [config.vision_config.embed_dim * 2**stage for stage in range(len(config.vision_config.depths))]
        audio_width = config.audio_config.patch_embeds_hidden_size * 2 ** (len(config.audio_config.depths) - 1)
        self.feature_map_sizes = list(config.feature_map_sizes)
        self.fusion_stages = list(config.fusion_stages)
        self.feature_projections = nn.ModuleList([nn.Linear(width, channels) for width in widths])
        self.audio_projection = nn.Linear(audio_width, config.audio_feature_size)
        self.temporal_attention = DgSctSegmentationTemporalAttention(config)
        self.audio_visual_fusion = nn.ModuleDict({str(stage): DgSctAudioVisualFusion(config) for stage in self.fusion_stages})
        self.decoder_blocks = nn.ModuleList(
            [DgSctFeatureFusionBlock(channels, with_skip=index < len(widths) - 1) for index in range(len(widths))]
        )
        first, second = config.mask_head_sizes
        self.mask_conv1 = nn.Conv2d(channels, first, 3, padding=1)
        self.mask_conv2 = nn.Conv2d(first, second, 3, padding=1)
        self.mask_classifier = nn.Conv2d(second, 1, 1)

    def forward(self, stage_tokens: list[torch.Tensor], audio_pooled: torch.Tensor):
        """`stage_tokens`: each stage's visual tokens `[B, T, N_i, C_i]` (square grids, the last after the final
        norm); `audio_pooled` `[B, T, A]`. Returns (mask logits `[B*T, 1, S, S]`, feature maps, projected audios)."""
        batch_size, num_segments = audio_pooled.shape[:2]
        feature_maps = []
        for tokens, projection, size in zip(stage_tokens, self.feature_projections, self.feature_map_sizes):
            side = math.isqrt(tokens.shape[2])
            if side * side != tokens.shape[2]:
                raise ValueError(f"The segmentation head needs square visual token grids, got {tokens.shape[2]} tokens.")
            grid = projection(tokens.reshape(batch_size * num_segments, side, side, -1)).permute(0, 3, 1, 2)
            feature_maps.append(F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False))
        audio = self.audio_projection(audio_pooled)
        feature_maps, audio = self.temporal_attention(feature_maps, audio)
        audio_features = []
        for stage in self.fusion_stages:
            clip_maps = feature_maps[stage].view(batch_size, num_segments, *feature_maps[stage].shape[1:])
            fused, projected_audio = self.audio_visual_fusion[str(stage)](clip_maps.transpose(1, 2), audio)
            feature_maps[stage] = fused.transpose(1, 2).reshape_as(feature_maps[stage])
            audio_features.append(projected_audio)
        hidden_states = self.decoder_blocks[-1](feature_maps[-1])
        for index in range(len(feature_maps) - 2, -1, -1):
            hidden_states = self.decoder_blocks[index](hidden_states, feature_maps[index])
        hidden_states = F.interpolate(self.mask_conv1(hidden_states), scale_factor=2, mode="bilinear", align_corners=False)
        logits = self.mask_classifier(F.relu(self.mask_conv2(hidden_states)))
        return logits, feature_maps, audio_features


class DgSctForAudioVisualSegmentation(DgSctPreTrainedModel):
    r"""DG-SCT for audio-visual segmentation (AVSBench S4): `DgSctModel` + the original multi-scale temporal
    attention, TPAVI audio fusion and decoder. Predicts a sounding-object mask per frame (`logits > 0`)."""

    config: DgSctSegmentationConfig
    config_class = DgSctSegmentationConfig

    def __init__(self, config: DgSctSegmentationConfig):
        super().__init__(config)
        self.dg_sct = DgSctModel(config)
        self.segmentation_head = DgSctSegmentationHead(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.dg_sct.get_input_embeddings()

    def compute_loss(self, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """BCE on the masks given: `(batch, H, W)` = the first frame of each clip (S4), `(batch, frames, H, W)` =
        every frame."""
        size = self.config.mask_size
        if labels.shape[-2:] != (size, size) or labels.ndim not in (3, 4) or labels.shape[0] != logits.shape[0]:
            raise ValueError(
                f"labels must be ground-truth masks of shape (batch_size={logits.shape[0]}, {size}, {size}) for the "
                f"first frame or (batch_size, {logits.shape[1]}, {size}, {size}) for every frame (the decoder's "
                f"{size} x {size} output; resize the masks first), got {tuple(labels.shape)}."
            )
        if labels.ndim == 3:
            return F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(logits.dtype))
        if labels.shape[1] != logits.shape[1]:
            raise ValueError(
                f"labels hold masks for {labels.shape[1]} frames but the clip has {logits.shape[1]} frames."
            )
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DgSctSegmentationOutput | tuple:
        r"""
        input_values: see `DgSctModel.forward` (5 segments; each 1-s segment tiled to 5 s by the processor).
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_segments, 3, height, width)`):
            Normalised frames of any size; resized (bicubic) to the visual tower's input size inside the model, as
            the original does with its 224 x 224 AVSBench frames.
        labels (`torch.FloatTensor` of shape `(batch_size, mask_size, mask_size)` or `(batch_size, num_segments,
            mask_size, mask_size)`, *optional*): binary ground-truth masks (first frame only, S4; or every frame).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if pixel_values is not None and pixel_values.ndim == 5:
            size = self.config.vision_config.image_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            if tuple(pixel_values.shape[-2:]) != size:
                frames = F.interpolate(pixel_values.flatten(0, 1), size=size, mode="bicubic", align_corners=False)
                pixel_values = frames.view(*pixel_values.shape[:2], *frames.shape[1:])
        encoded = self.dg_sct(
            input_values,
            pixel_values,
            output_hidden_states=True,  # the head reads every stage's tokens
            output_attentions=output_attentions,
            return_dict=True,
        )
        if encoded.visual_pooler_output.shape[1] != self.config.num_segments:
            raise ValueError(
                f"The segmentation head expects {self.config.num_segments} frames per clip (config.num_segments), "
                f"got {encoded.visual_pooler_output.shape[1]}."
            )
        batch_size, num_segments = encoded.visual_pooler_output.shape[:2]
        logits, feature_maps, audio_features = self.segmentation_head(
            list(encoded.visual_hidden_states[1:]), encoded.audio_pooler_output
        )
        logits = logits.view(batch_size, num_segments, *logits.shape[-2:])
        loss = self.compute_loss(labels.to(logits.device), logits) if labels is not None else None
        output = DgSctSegmentationOutput(
            loss=loss,
            logits=logits,
            feature_maps=tuple(F.relu(m).view(batch_size, num_segments, *m.shape[1:]) for m in feature_maps),
            audio_features=tuple(audio_features),
            audio_pooler_output=encoded.audio_pooler_output,
            visual_pooler_output=encoded.visual_pooler_output,
            audio_hidden_states=encoded.audio_hidden_states if output_hidden_states else None,
            visual_hidden_states=encoded.visual_hidden_states if output_hidden_states else None,
            audio_attentions=encoded.audio_attentions,
            visual_attentions=encoded.visual_attentions,
        )
        return output if return_dict else output.to_tuple()
