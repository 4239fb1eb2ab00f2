"""DG-SCT heads for the other downstream tasks of the paper, each on the same `DgSctModel` (frozen Swin-V2 and
HTS-AT with DG-SCT modules):

* `DgSctForAudioVisualQuestionAnswering`: MUSIC-AVQA (`AVQA/net_grd_avst/net_avst.py` `AVQA_Fusion_Net`).

Names follow the original modules; each class says which original function it reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers.utils import ModelOutput

from .configuration_dg_sct_tasks import DgSctQuestionAnsweringConfig
from .modeling_dg_sct import DgSctModel, DgSctPreTrainedModel

__all__ = [
    "DgSctForAudioVisualQuestionAnswering",
    "DgSctQuestionAnsweringOutput",
]


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
