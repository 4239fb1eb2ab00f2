"""PyTorch VATT: Transformers for multimodal self-supervised learning from raw video, audio and text (Akbari et al.,
NeurIPS 2021), ported from the original TensorFlow 2 code (`google-research/vatt`).

Layout (names here -> attribute paths of the original checkpoints, see `hf_av.conversion.vatt` for the full map):

* `video_embeddings` (`vid_backbone/_base/{voxel_to_patch, pre_proj, pos_embedding_lookup, agg_embedding}`):
  Conv3D patches (4 x 16 x 16 voxels), optional GELU pre-projection, the summed learnable t / h / w position
  tables with the original's LayerNorm on the SUM (not on the tokens), DropToken (training only), AGG token first.
* `audio_embeddings` (`aud_backbone/_base/...`, WaT): Conv1D patches of 128 raw samples, temporal table, the same.
* `text_embeddings` (`txt_backbone/{embedding, agg_embedding, pre_proj}`): frozen word2vec table; in the
  modality-specific model the AGG token lives in the 300-d word space and goes in before the bias-free GELU
  projection; in the modality-agnostic model a learned temporal table + LayerNorm is added after the projection.
* `video_encoder` / `audio_encoder` (`.../tx`): pre-LN Transformer (hf_av's shared `TransformerBlock`) + LayerNorm;
  `text_encoder` (`txt_backbone/base_lm`): T5 encoder (RMSNorm before attention, bias-free unscaled attention with a
  relative position bias computed once and reused by every layer, full LayerNorm before the bias-free GELU MLP).
  The modality-agnostic model has ONE `encoder` (`unified_transformer/tx`) run on each modality separately.
* `*_post_projection` (`post_proj`): GELU Linear on every output token (modality-agnostic model, and towers
  fine-tuned from it).
* `video_audio_projection`, `video_text_projection`, `audio_projection`, `text_projection`
  (`_head_layer/_bridge_heads/0/...`, the FAC head): the common video-audio (512) and video-text (256) spaces.

Every pooled representation is the AGG token (index 0); nothing is mean-pooled.
"""


import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.t5.modeling_t5 import T5Attention, T5LayerNorm
from transformers.utils import ModelOutput, logging

from ..common.attention import MultiHeadSelfAttention
from ..common.layers import FeedForward, TransformerBlock
from .configuration_vatt import VattConfig

logger = logging.get_logger(__name__)

# The original subtracts this from the similarities of samples a mask removes (`LARGE_NUM` in objectives.py).
_LARGE_NUM = 1e9


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class VattTowerOutput(ModelOutput):
    """One modality run through its tower.

    Args:
        last_hidden_state (`[B, 1 + N, D]`): output tokens, AGG token first (after the final norm and the
            post-projection when the tower has one). In training DropToken leaves fewer than N patch tokens.
        pooler_output (`[B, D]`): the AGG token (original `features_pooled`).
        hidden_states: the encoder input and the output of every layer (before the final norm).
        attentions: attention probabilities of every layer.
        grid (`tuple[int, ...]`): the patch grid of the input ((t, h, w) for video, (n,) for audio and text), to
            reshape `last_hidden_state[:, 1:]` into the original `features` layout at inference.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    grid: tuple[int, ...] | None = None


@dataclass
class VattModelOutput(ModelOutput):
    """Output of `VattModel`.

    Args:
        logits_per_video_audio (`[B_video, B_audio]`): cosine similarity of `video_audio_embeds` and `audio_embeds`
            divided by `config.contrastive_temperature`.
        logits_per_video_text (`[B_video, B_text]`): the same for `video_text_embeds` and `text_embeds` (texts
            flattened when several narrations per clip are given).
        video_audio_embeds (`[B, S_va]`): the video in the video-audio space (original `video.toaud`; not
            L2-normalised, as the original returns them).
        video_text_embeds (`[B, S_vt]`): the video in the video-text space (original `video.totxt`).
        audio_embeds (`[B, S_va]`): the audio in the video-audio space (original `audio.tovid`).
        text_embeds (`[B, S_vt]`, or `[B, L, S_vt]` for `[B, L, N]` ids): the text in the video-text space
            (original `text.tovid`).
        video_last_hidden_state / audio_last_hidden_state / text_last_hidden_state (`[B, 1 + N, D]`): tower outputs
            with the AGG token first; `[:, 1:]` are the original `features`.
        video_pooler_output / audio_pooler_output / text_pooler_output (`[B, D]`): the AGG tokens (original
            `features_pooled`).
        *_hidden_states / *_attentions: per-layer states / attention probabilities of each tower.
    """

    logits_per_video_audio: torch.FloatTensor | None = None
    logits_per_video_text: torch.FloatTensor | None = None
    video_audio_embeds: torch.FloatTensor | None = None
    video_text_embeds: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    video_last_hidden_state: torch.FloatTensor | None = None
    video_pooler_output: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    audio_pooler_output: torch.FloatTensor | None = None
    text_last_hidden_state: torch.FloatTensor | None = None
    text_pooler_output: torch.FloatTensor | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    text_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_attentions: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    text_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class VattForPreTrainingOutput(ModelOutput):
    """Output of `VattForPreTraining`: the losses, then every field of `VattModelOutput`.

    Args:
        loss: weighted mean of the two terms below (original `AsymmetricNCE`: `(w_va * nce + w_vt * mil_nce) /
            (w_va + w_vt)` over the terms whose inputs are given).
        loss_video_audio: NCE between `video_audio_embeds` and `audio_embeds`.
        loss_video_text: MIL-NCE between `video_text_embeds` and the clip's narrations `text_embeds`.
        other fields: see `VattModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    loss_video_audio: torch.FloatTensor | None = None
    loss_video_text: torch.FloatTensor | None = None
    logits_per_video_audio: torch.FloatTensor | None = None
    logits_per_video_text: torch.FloatTensor | None = None
    video_audio_embeds: torch.FloatTensor | None = None
    video_text_embeds: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    video_last_hidden_state: torch.FloatTensor | None = None
    video_pooler_output: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    audio_pooler_output: torch.FloatTensor | None = None
    text_last_hidden_state: torch.FloatTensor | None = None
    text_pooler_output: torch.FloatTensor | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    text_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_attentions: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    text_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class VattClassifierOutput(ModelOutput):
    """Output of `VattForVideoClassification` / `VattForAudioClassification`.

    Args:
        loss: cross-entropy (video) or binary cross-entropy (audio, multi-label) of `logits` with `labels`.
        logits (`[B, num_labels]`): class scores, averaged over the views when several are given (the original
            `PredictionAggregator` averages logits before the softmax / sigmoid).
        probabilities (`[B, num_labels]`): `softmax(logits)` (video) or `sigmoid(logits)` (audio), as the original
            returns them.
        per_view_logits (`[B, V, num_labels]`): logits of every view, for `[B, V, ...]` input only.
        pooled_output (`[B(*V), D]`): the AGG token fed to the classifier.
        hidden_states / attentions: per-layer states / attention probabilities of the tower.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    probabilities: torch.FloatTensor | None = None
    per_view_logits: torch.FloatTensor | None = None
    pooled_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Functional pieces
# ---------------------------------------------------------------------------------------------------------------------
def resample_position_table(table: torch.Tensor, num_positions: int, order: int = 3) -> torch.Tensor:
    """Resample a `[n, D]` position table to `[num_positions, D]` as the original `ExpandableEmbedding` does.

    The original fits a polyharmonic spline of order 3 (`tfa.image.interpolate_spline`, no regularisation) through
    the `n` rows placed at `i / n` and evaluates it at `j / num_positions`. The spline system is solved in float64
    here (TF solved it in float32) and the result is cast back to the table's dtype.
    """
    if order != 3:
        raise NotImplementedError("only the order-3 polyharmonic spline of the original is implemented")
    num_rows = table.shape[0]
    if num_positions == num_rows:
        return table
    values = table.to(torch.float64)
    train_points = torch.arange(num_rows, dtype=torch.float64, device=table.device) / num_rows
    query_points = torch.arange(num_positions, dtype=torch.float64, device=table.device) / num_positions

    def kernel(squared_distance: torch.Tensor) -> torch.Tensor:
        # tfa's phi for odd orders: r^order on the clamped squared distance (clamp 1e-10 as tfa)
        return squared_distance.clamp_min(1e-10) ** (0.5 * order)

    pairwise = kernel((train_points[:, None] - train_points[None, :]) ** 2)  # [n, n]
    affine = torch.stack([train_points, torch.ones_like(train_points)], dim=1)  # [n, 2]
    system = torch.zeros(num_rows + 2, num_rows + 2, dtype=torch.float64, device=table.device)
    system[:num_rows, :num_rows] = pairwise
    system[:num_rows, num_rows:] = affine
    system[num_rows:, :num_rows] = affine.T
    right_hand_side = torch.cat([values, values.new_zeros(2, values.shape[1])], dim=0)
    coefficients = torch.linalg.solve(system, right_hand_side)
    radial, linear = coefficients[:num_rows], coefficients[num_rows:]
    query_affine = torch.stack([query_points, torch.ones_like(query_points)], dim=1)
    resampled = kernel((query_points[:, None] - train_points[None, :]) ** 2) @ radial + query_affine @ linear
    return resampled.to(table.dtype)


def contrastive_nce_loss(
    video_embeds: torch.Tensor,
    other_embeds: torch.Tensor,
    temperature: float,
    other_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """NCE (`other_embeds` `[B, D]`) or MIL-NCE (`[B, L, D]`: L positive candidates per clip) of the original
    `AsymmetricNCE._calculate_nce` on one device.

    For clip `i`: the positives are its L candidates; the denominator holds video `i` against every candidate of
    every clip AND every video against clip `i`'s candidates (the original concatenates both directions, so the
    positives appear in both halves). `other_mask` `[B]` (1 = valid) removes clips without that modality as the
    original does (their similarities get -1e9 and the loss is rescaled by `B / valid`).
    """
    if other_embeds.dim() == 2:
        other_embeds = other_embeds.unsqueeze(1)
    video = nn.functional.normalize(video_embeds, dim=-1)
    other = nn.functional.normalize(other_embeds, dim=-1)
    batch_size = video.shape[0]
    # [B_video, B_other, L]: video i against candidate l of clip c
    similarity = torch.einsum("id,cld->icl", video, other) / temperature
    positives = torch.diagonal(similarity, dim1=0, dim2=1).transpose(0, 1)  # [B, L]
    video_to_all = similarity
    # [B, B, L]: clip b's candidates against every video c
    all_to_other = similarity.transpose(0, 1)
    if other_mask is not None:
        invalid = (1.0 - other_mask.to(similarity.dtype)) * _LARGE_NUM
        video_to_all = video_to_all - invalid[None, :, None]
        all_to_other = all_to_other - invalid[:, None, None]
    scores = torch.cat([video_to_all, all_to_other], dim=1).reshape(batch_size, -1)
    loss = torch.logsumexp(scores, dim=1) - torch.logsumexp(positives, dim=1)
    if other_mask is not None:
        mask = other_mask.to(loss.dtype)
        valid = mask.sum()
        scale = torch.where(valid > 0, mask.numel() / valid.clamp_min(1.0), torch.zeros_like(valid))
        loss = loss * mask * scale
    loss = torch.nan_to_num(loss, nan=0.0)
    return loss.mean()


def vatt_classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy (`multi_label=False`) or sigmoid binary cross-entropy over every (sample, class).

    With `num_items_in_batch` (passed by `Trainer` under gradient accumulation: the number of label entries of all
    accumulated micro-batches) the summed loss is divided by it, so accumulated gradients equal one large batch.
    """
    labels = labels.to(logits.device)
    if multi_label:
        if labels.shape != logits.shape:
            raise ValueError(
                f"multi-label `labels` must have the logits' shape {tuple(logits.shape)} (0/1 per class), got "
                f"{tuple(labels.shape)}"
            )
        reduction = "sum" if num_items_in_batch is not None else "mean"
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction=reduction)
    else:
        if labels.dim() != 1 or labels.shape[0] != logits.shape[0] or labels.is_floating_point():
            raise ValueError(
                f"`labels` must be class indices of shape [{logits.shape[0]}] (int64), got "
                f"{tuple(labels.shape)} ({labels.dtype})"
            )
        reduction = "sum" if num_items_in_batch is not None else "mean"
        loss = nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction=reduction)
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
    return loss


def _collect(enabled: bool) -> list | None:
    return [] if enabled else None


def _as_tuple(items: list | None) -> tuple | None:
    return tuple(items) if items is not None else None


# ---------------------------------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------------------------------
class VattPositionEmbeddings(nn.Module):
    """Learnable factorised position tables, summed over the axes, then LayerNorm of the SUM (original
    `SpatioTemporalEmbeddings` / `TemporalEmbeddings`).

    `forward(grid)` returns `LayerNorm(E_t[t] + E_h[h] + E_w[w])` for every (t, h, w) of `grid` flattened t-major
    (`[prod(grid), D]`); an axis whose size differs from its table is resampled first (order-3 spline, as the
    original). Axes: `("temporal",)` for audio / text, `("temporal", "vertical", "horizontal")` for video.
    """

    def __init__(self, hidden_size: int, buckets: dict[str, int], layer_norm_eps: float):
        super().__init__()
        self.axes = tuple(buckets)
        self.buckets = dict(buckets)
        for axis, size in buckets.items():
            self.register_parameter(f"{axis}_position_embeddings", nn.Parameter(torch.empty(size, hidden_size)))
        self.layernorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def table(self, axis: str) -> torch.Tensor:
        return getattr(self, f"{axis}_position_embeddings")

    @property
    def num_buckets(self) -> int:
        return math.prod(self.buckets.values())

    def forward(self, grid: tuple[int, ...]) -> torch.Tensor:
        if len(grid) != len(self.axes):
            raise ValueError(f"expected a {len(self.axes)}-axis patch grid, got {grid}")
        total = None
        for index, (axis, size) in enumerate(zip(self.axes, grid)):
            values = resample_position_table(self.table(axis), size)
            shape = [1] * len(grid) + [values.shape[-1]]
            shape[index] = size
            values = values.reshape(shape)
            total = values if total is None else total + values
        return self.layernorm(total.reshape(-1, total.shape[-1]))


class VattProjection(nn.Module):
    """`activation(Linear(x))`: the original pre-/post-projections (`pre_proj`, `post_proj`)."""

    def __init__(self, in_features: int, out_features: int, hidden_act: str, bias: bool = True):
        super().__init__()
        self.dense = nn.Linear(in_features, out_features, bias=bias)
        self.activation = ACT2FN[hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states))


class VattPatchEmbeddings(nn.Module):
    """Video (`Conv3d`, kernel = stride = (t, p, p)) or raw-waveform (`Conv1d`, kernel = stride = p) tokenizer,
    optional pre-projection, position tables, dropout, DropToken (training only) and the AGG token."""

    def __init__(self, config: VattConfig, modality: str, hidden_size: int, pre_projection: bool):
        super().__init__()
        self.modality = modality
        if modality == "visual":
            spatial = config.video_spatial_patch_size
            kernel = (config.video_temporal_patch_size, spatial, spatial)
            self.patch_embeddings = nn.Conv3d(3, hidden_size, kernel_size=kernel, stride=kernel)
            buckets = dict(zip(("temporal", "vertical", "horizontal"), config.video_position_buckets))
        else:
            self.patch_embeddings = nn.Conv1d(
                1, hidden_size, kernel_size=config.audio_patch_size, stride=config.audio_patch_size
            )
            buckets = {"temporal": config.audio_position_buckets}
        self.pre_projection = VattProjection(hidden_size, hidden_size, config.hidden_act) if pre_projection else None
        self.position_embeddings = VattPositionEmbeddings(hidden_size, buckets, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.drop_token_rate = config.drop_token_rate
        self.agg_embedding = nn.Parameter(torch.empty(hidden_size))

    def tokenize(self, values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Input -> patch tokens `[B, N, D]` and the patch grid, checking the input layout first."""
        conv = self.patch_embeddings
        if self.modality == "visual":
            if values.dim() != 5 or values.shape[2] != 3:
                raise ValueError(
                    "pixel_values must be [batch, frames, 3, height, width] (channels first, values in [-1, 1]), got "
                    f"shape {tuple(values.shape)}"
                )
            frames, height, width = values.shape[1], values.shape[3], values.shape[4]
            patch_t, patch_h, patch_w = conv.kernel_size
            if frames % patch_t or height % patch_h or width % patch_w:
                raise ValueError(
                    f"pixel_values: frames ({frames}) must be a multiple of {patch_t} and height x width "
                    f"({height} x {width}) multiples of {patch_h}; VATT was trained on 32 x 224 x 224 clips"
                )
            tokens = conv(values.transpose(1, 2).to(conv.weight.dtype))  # [B, D, t, h, w]
        else:
            if values.dim() != 2:
                raise ValueError(
                    f"input_values must be a raw waveform [batch, samples], got shape {tuple(values.shape)}"
                )
            patch = conv.kernel_size[0]
            if values.shape[1] % patch:
                raise ValueError(
                    f"input_values: the number of samples ({values.shape[1]}) must be a multiple of the patch size "
                    f"({patch}); VATT reads 153600 samples (3.2 s at 48 kHz)"
                )
            tokens = conv(values.unsqueeze(1).to(conv.weight.dtype))  # [B, D, n]
        grid = tuple(tokens.shape[2:])
        return tokens.flatten(2).transpose(1, 2), grid

    def drop_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """DropToken: one random order shared by the batch, keep `int((1 - rate) * buckets)` tokens."""
        if not self.training or self.drop_token_rate <= 0:
            return tokens
        keep = int((1.0 - self.drop_token_rate) * self.position_embeddings.num_buckets)
        order = torch.randperm(tokens.shape[1], device=tokens.device)[:keep]
        return tokens[:, order]

    def forward(self, values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        tokens, grid = self.tokenize(values)
        if self.pre_projection is not None:
            tokens = self.pre_projection(tokens)
        tokens = self.dropout(tokens + self.position_embeddings(grid))
        tokens = self.drop_tokens(tokens)
        agg = self.agg_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return torch.cat([agg, tokens], dim=1), grid


class VattT5TextEmbeddings(nn.Module):
    """Text front of the modality-specific model: word2vec lookup, AGG token in the word space, then the bias-free
    GELU projection to the encoder width (original `LanguageModel`: `embedding`, `agg_embedding`, `pre_proj`)."""

    def __init__(self, config: VattConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.text_vocab_size, config.text_embedding_size)
        self.agg_embedding = nn.Parameter(torch.empty(config.text_embedding_size))
        self.pre_projection = VattProjection(
            config.text_embedding_size, config.text_hidden_size, config.hidden_act, bias=False
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        words = self.word_embeddings(input_ids)
        agg = self.agg_embedding.to(words.dtype).expand(words.shape[0], 1, -1)
        return self.pre_projection(torch.cat([agg, words], dim=1))


class VattWordEmbeddings(nn.Module):
    """Text front of the modality-agnostic model: word2vec lookup, GELU projection (with bias), learned temporal
    table + LayerNorm, dropout, AGG token in the encoder space (original `raw_to_embeddings/text`,
    `pre_proj/text`, `pos_embedding_lookup/text`, `txt_agg_embedding`)."""

    def __init__(self, config: VattConfig):
        super().__init__()
        hidden_size = config.shared_hidden_size
        self.word_embeddings = nn.Embedding(config.text_vocab_size, config.text_embedding_size)
        self.pre_projection = VattProjection(config.text_embedding_size, hidden_size, config.hidden_act)
        self.position_embeddings = VattPositionEmbeddings(
            hidden_size, {"temporal": config.text_max_length}, config.layer_norm_eps
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.agg_embedding = nn.Parameter(torch.empty(hidden_size))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        tokens = self.pre_projection(self.word_embeddings(input_ids))
        tokens = self.dropout(tokens + self.position_embeddings((input_ids.shape[1],)))
        agg = self.agg_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return torch.cat([agg, tokens], dim=1)


# ---------------------------------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------------------------------
class VattEncoder(nn.Module):
    """Pre-LN Transformer of the video / audio / modality-agnostic towers (original `TransformerEncoder` with
    `pre_norm=True`): hf_av's shared `TransformerBlock` layers (biases, scaled attention, exact GELU MLP) and a final
    LayerNorm."""

    def __init__(self, config: VattConfig, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int):
        super().__init__()
        self.layers = nn.ModuleList(
            [
                TransformerBlock(
                    config,
                    hidden_size,
                    num_heads,
                    intermediate_size,
                    layer_norm_eps=config.layer_norm_eps,
                    hidden_act=config.hidden_act,
                    qkv_bias=True,
                    attention_dropout=config.attention_probs_dropout_prob,
                    hidden_dropout=config.hidden_dropout_prob,
                )
                for _ in range(num_layers)
            ]
        )
        self.layernorm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, attention_mask=None, all_hidden_states=None, all_attentions=None):
        if all_hidden_states is not None:
            all_hidden_states.append(hidden_states)
        for layer in self.layers:
            hidden_states, attention = layer(
                hidden_states, attention_mask, output_attentions=all_attentions is not None
            )
            if all_hidden_states is not None:
                all_hidden_states.append(hidden_states)
            if all_attentions is not None:
                all_attentions.append(attention)
        return self.dropout(self.layernorm(hidden_states))


class VattT5Attention(MultiHeadSelfAttention):
    """T5 self-attention: hf_av's shared attention with bias-free projections and NO 1/sqrt(d) scaling; the
    relative position bias arrives inside the additive `attention_mask`."""

    def __init__(self, config, hidden_size: int, num_attention_heads: int, attention_dropout: float):
        super().__init__(config, hidden_size, num_attention_heads, qkv_bias=False, attention_dropout=attention_dropout)
        self.scaling = 1.0
        self.proj = nn.Linear(hidden_size, hidden_size, bias=False)


class VattT5FeedForward(FeedForward):
    """T5 MLP `wo(dropout(gelu(wi(x))))` with bias-free layers (hf_av's shared `FeedForward` otherwise)."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str, dropout: float):
        super().__init__(hidden_size, intermediate_size, hidden_act, dropout)
        self.fc1 = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.fc2 = nn.Linear(intermediate_size, hidden_size, bias=False)


class VattT5Layer(GradientCheckpointingLayer):
    """One layer of the original T5 encoder: `x + drop(attn(RMSNorm(x)))`, then `x + mlp(LayerNorm(x))`.

    The MLP norm is a full LayerNorm (mean-centred, with bias) in the original, unlike Transformers' T5."""

    def __init__(self, config: VattConfig):
        super().__init__()
        hidden_size = config.text_hidden_size
        self.attention_norm = T5LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.attention = VattT5Attention(
            config, hidden_size, config.text_num_attention_heads, config.attention_probs_dropout_prob
        )
        self.mlp_norm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = VattT5FeedForward(
            hidden_size, config.text_intermediate_size, config.hidden_act, config.hidden_dropout_prob
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, attention_mask=None, output_attentions: bool = False, **kwargs):
        attn_output, attention = self.attention(
            self.attention_norm(hidden_states), attention_mask, output_attentions=output_attentions
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        hidden_states = hidden_states + self.mlp(self.mlp_norm(hidden_states))
        return hidden_states, attention


class VattT5Encoder(nn.Module):
    """The original T5 encoder (`t5_small`): relative position bias (its table belongs to the first layer in the
    original, which computes the bias once and hands it, padding mask included, to all later layers), the layers,
    a final RMSNorm."""

    def __init__(self, config: VattConfig):
        super().__init__()
        self.num_buckets = config.text_relative_attention_num_buckets
        self.max_distance = config.text_relative_attention_max_distance
        self.relative_attention_bias = nn.Embedding(self.num_buckets, config.text_num_attention_heads)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList([VattT5Layer(config) for _ in range(config.text_num_hidden_layers)])
        self.final_layer_norm = T5LayerNorm(config.text_hidden_size, eps=config.layer_norm_eps)

    def position_bias(self, length: int, device) -> torch.Tensor:
        """`[1, heads, length, length]` bidirectional T5 bias (Transformers' own T5 bucketing, same as the original)."""
        positions = torch.arange(length, device=device)
        relative = positions[None, :] - positions[:, None]
        buckets = T5Attention._relative_position_bucket(
            relative, bidirectional=True, num_buckets=self.num_buckets, max_distance=self.max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)

    def forward(self, hidden_states, attention_mask=None, all_hidden_states=None, all_attentions=None):
        bias = self.position_bias(hidden_states.shape[1], hidden_states.device).to(hidden_states.dtype)
        if attention_mask is not None:
            bias = bias + attention_mask
        hidden_states = self.dropout(hidden_states)
        if all_hidden_states is not None:
            all_hidden_states.append(hidden_states)
        for layer in self.layers:
            hidden_states, attention = layer(hidden_states, bias, output_attentions=all_attentions is not None)
            if all_hidden_states is not None:
                all_hidden_states.append(hidden_states)
            if all_attentions is not None:
                all_attentions.append(attention)
        return self.dropout(self.final_layer_norm(hidden_states))


# ---------------------------------------------------------------------------------------------------------------------
# Common-space heads (FAC)
# ---------------------------------------------------------------------------------------------------------------------
class VattVideoAudioProjection(nn.Module):
    """Video -> video-audio space: `BN(Linear(ReLU(BN(Linear(v)))))`, both Linears bias-free (original `vid_to_hid`
    and `hid_to_va/{pre_bn, dense, bn}`)."""

    def __init__(self, config: VattConfig, in_features: int):
        super().__init__()
        size = config.video_audio_projection_size
        self.dense_in = nn.Linear(in_features, size, bias=False)
        self.norm_in = nn.BatchNorm1d(size, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)
        self.dense_out = nn.Linear(size, size, bias=False)
        self.norm_out = nn.BatchNorm1d(size, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.training and pooled.shape[0] < 2:
            # BatchNorm's batch statistics need two clips (torch would stop with "Expected more than 1 value")
            raise ValueError(
                "VATT's video -> video-audio projection uses BatchNorm with batch statistics in training: it needs at "
                f"least 2 clips per batch, got {pooled.shape[0]}. Use a batch of 2 or more, or model.eval()."
            )
        hidden = torch.relu(self.norm_in(self.dense_in(pooled)))
        return self.norm_out(self.dense_out(hidden))


class VattVideoTextProjection(nn.Module):
    """Video-audio space -> video-text space: `BN(Linear(ReLU(z_va)))` (original `va_to_vat/{dense, bn}`)."""

    def __init__(self, config: VattConfig):
        super().__init__()
        size = config.video_text_projection_size
        self.dense = nn.Linear(config.video_audio_projection_size, size, bias=False)
        self.norm = nn.BatchNorm1d(size, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)

    def forward(self, video_audio_embeds: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dense(torch.relu(video_audio_embeds)))


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------
class VattPreTrainedModel(PreTrainedModel):
    """Weight initialisation and Transformers plumbing shared by the VATT models.

    Initialisers follow the original Keras code: Glorot-uniform Linear / Conv kernels with zero biases, position
    tables truncated-normal with std `D ** -0.5`, AGG tokens Glorot-normal (truncated normal, std `D ** -0.5` for a
    vector), Keras-default uniform(-0.05, 0.05) embeddings, norms at 1 / 0, BatchNorm statistics 0 / 1. Values
    loaded from a checkpoint are never overwritten (`transformers.initialization` skips them).
    """

    config: VattConfig
    base_model_prefix = "vatt"
    main_input_name = "pixel_values"
    input_modalities = ("video", "audio", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["VattPatchEmbeddings", "TransformerBlock", "VattT5Layer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv3d)):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -0.05, 0.05)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, T5LayerNorm):
            init.ones_(module.weight)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, VattPositionEmbeddings):
            for axis in module.axes:
                table = module.table(axis)
                std = table.shape[-1] ** -0.5
                init.trunc_normal_(table, std=std, a=-2 * std, b=2 * std)
        if isinstance(module, (VattPatchEmbeddings, VattT5TextEmbeddings, VattWordEmbeddings)):
            std = module.agg_embedding.shape[0] ** -0.5
            init.trunc_normal_(module.agg_embedding, std=std, a=-2 * std, b=2 * std)
        if isinstance(module, (VattForVideoClassification, VattForAudioClassification)):
            init.xavier_uniform_(module.classifier.weight)
            if isinstance(module, VattForAudioClassification) and module.classifier.out_features > 1:
                # the original starts the sigmoid head at the prior 1 / num_classes
                init.constant_(module.classifier.bias, -math.log(module.classifier.out_features - 1))
            else:
                init.zeros_(module.classifier.bias)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Loading re-creates the parameters, which resets `requires_grad`; re-apply the frozen word2vec policy.
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if isinstance(model, VattPreTrainedModel):
            model._set_word_embeddings_trainable()
        return loaded

    def _set_word_embeddings_trainable(self) -> None:
        for name, parameter in self.named_parameters():
            if name.endswith("word_embeddings.weight"):
                parameter.requires_grad_(self.config.trainable_word_embeddings)

    def _output_flags(self, output_hidden_states, output_attentions, return_dict) -> tuple[bool, bool, bool]:
        config = self.config
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        return_dict = config.return_dict if return_dict is None else return_dict
        return bool(output_hidden_states), bool(output_attentions), bool(return_dict)


class VattModel(VattPreTrainedModel):
    """VATT towers and common-space heads: token features, AGG embeddings, joint-space embeddings, similarities.

    `forward(pixel_values, input_values, input_ids)`: each given modality runs through its tower (the modality-
    specific towers, or the shared Transformer of the modality-agnostic model, once per modality) and the FAC heads
    map its AGG token into the common spaces (video: both spaces; audio: video-audio; text: video-text); when the
    video and another modality are both given, their similarity logits are returned too. Only the towers in
    `config.modalities` exist (a converted video classifier has no audio or text tower).

    Hidden states and attentions are collected per tower (`video_hidden_states`, ...) by the encoders themselves
    rather than by Transformers' output-capturing hooks: one encoder class serves three towers (and, in the
    modality-agnostic model, one encoder serves all three), so a hook on its layers could not tell the streams
    apart -- the reason CAV-MAE collects per stream too.

    Input sizes: `pixel_values` `[B, T, 3, H, W]` (one view, values in [-1, 1]; VATT trained on 32 x 224 x 224),
    `input_values` `[B, samples]` (raw 48 kHz waveform, 153600 samples), `input_ids` `[B, N]` or `[B, L, N]`
    (L narrations per clip), `N <= config.text_max_length`. Other clip sizes resample the position tables with the
    original's order-3 polyharmonic spline (as the original does; the modality-agnostic text table likewise for
    N != text_max_length).
    """

    def __init__(self, config: VattConfig):
        super().__init__(config)
        self.config = config
        modalities = set(config.modalities)
        agnostic = config.is_modality_agnostic
        if agnostic:
            self.encoder = VattEncoder(
                config, config.shared_hidden_size, config.shared_num_hidden_layers, config.shared_num_attention_heads,
                config.shared_intermediate_size,
            )
        if "visual" in modalities:
            hidden = config.shared_hidden_size if agnostic else config.video_hidden_size
            self.video_embeddings = VattPatchEmbeddings(
                config, "visual", hidden, agnostic or config.video_pre_projection
            )
            if not agnostic:
                self.video_encoder = VattEncoder(
                    config, hidden, config.video_num_hidden_layers, config.video_num_attention_heads,
                    config.video_intermediate_size,
                )
            post = config.shared_post_projection_size if agnostic else config.video_post_projection_size
            self.video_post_projection = VattProjection(hidden, post, config.hidden_act) if post else None
        if "audio" in modalities:
            hidden = config.shared_hidden_size if agnostic else config.audio_hidden_size
            self.audio_embeddings = VattPatchEmbeddings(
                config, "audio", hidden, agnostic or config.audio_pre_projection
            )
            if not agnostic:
                self.audio_encoder = VattEncoder(
                    config, hidden, config.audio_num_hidden_layers, config.audio_num_attention_heads,
                    config.audio_intermediate_size,
                )
            post = config.shared_post_projection_size if agnostic else config.audio_post_projection_size
            self.audio_post_projection = VattProjection(hidden, post, config.hidden_act) if post else None
        if "text" in modalities:
            if agnostic:
                self.text_embeddings = VattWordEmbeddings(config)
                self.text_post_projection = VattProjection(
                    config.shared_hidden_size, config.shared_post_projection_size, config.hidden_act
                )
            else:
                self.text_embeddings = VattT5TextEmbeddings(config)
                self.text_encoder = VattT5Encoder(config)
                self.text_post_projection = None
        # FAC common-space heads, for the modalities present
        if "visual" in modalities and len(modalities) > 1:
            self.video_audio_projection = VattVideoAudioProjection(config, config.tower_width("visual"))
        if "visual" in modalities and "text" in modalities:
            self.video_text_projection = VattVideoTextProjection(config)
        if "audio" in modalities and "visual" in modalities:
            self.audio_projection = nn.Linear(config.tower_width("audio"), config.video_audio_projection_size)
        if "text" in modalities and "visual" in modalities:
            self.text_projection = nn.Linear(config.tower_width("text"), config.video_text_projection_size)
        self.post_init()
        self._set_word_embeddings_trainable()

    def get_input_embeddings(self) -> nn.Module:
        if "text" in self.config.modalities:
            return self.text_embeddings.word_embeddings
        modality = "video" if "visual" in self.config.modalities else "audio"
        return getattr(self, f"{modality}_embeddings").patch_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        if "text" not in self.config.modalities:
            raise ValueError("set_input_embeddings replaces the word table; this VATT model has no text tower")
        self.text_embeddings.word_embeddings = value

    def _require(self, modality: str) -> None:
        if modality not in self.config.modalities:
            raise ValueError(
                f"This VATT model has no {modality} tower (config.modalities = {self.config.modalities}); it was "
                "built or converted for other modalities."
            )

    # Towers (also used by the heads) ----------------------------------------------------------------------------------
    def _run_tower(self, embeddings, encoder, post_projection, attention_mask, grid, output_hidden_states,
                   output_attentions) -> VattTowerOutput:
        all_hidden, all_attentions = _collect(output_hidden_states), _collect(output_attentions)
        hidden = encoder(embeddings, attention_mask, all_hidden, all_attentions)
        if post_projection is not None:
            hidden = post_projection(hidden)
        return VattTowerOutput(
            last_hidden_state=hidden, pooler_output=hidden[:, 0], hidden_states=_as_tuple(all_hidden),
            attentions=_as_tuple(all_attentions), grid=grid,
        )

    def encode_video(self, pixel_values: torch.Tensor, output_hidden_states: bool = False,
                     output_attentions: bool = False) -> VattTowerOutput:
        """`[B, T, 3, H, W]` frames -> video tower output (original `vid_backbone` / UT `video`)."""
        self._require("visual")
        tokens, grid = self.video_embeddings(pixel_values)
        encoder = self.encoder if self.config.is_modality_agnostic else self.video_encoder
        return self._run_tower(tokens, encoder, self.video_post_projection, None, grid, output_hidden_states,
                               output_attentions)

    def encode_audio(self, input_values: torch.Tensor, output_hidden_states: bool = False,
                     output_attentions: bool = False) -> VattTowerOutput:
        """`[B, samples]` raw waveform -> audio tower output (original `aud_backbone` / UT `audio`)."""
        self._require("audio")
        tokens, grid = self.audio_embeddings(input_values)
        encoder = self.encoder if self.config.is_modality_agnostic else self.audio_encoder
        return self._run_tower(tokens, encoder, self.audio_post_projection, None, grid, output_hidden_states,
                               output_attentions)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    output_hidden_states: bool = False, output_attentions: bool = False) -> VattTowerOutput:
        """`[B, N]` word ids (0 = padding) -> text tower output (original `txt_backbone` / UT `text`)."""
        self._require("text")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, words], got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.text_max_length:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} words, more than this model's maximum "
                f"(config.text_max_length = {self.config.text_max_length}); VattTokenizer truncates to it"
            )
        if attention_mask is None:
            attention_mask = input_ids != 0  # the original masks padding id 0
        elif attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} differs from input_ids {tuple(input_ids.shape)}"
            )
        tokens = self.text_embeddings(input_ids)
        # the AGG token is always attended; padded words get a large negative additive mask
        mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], 1), attention_mask], dim=1)
        additive = (1.0 - mask.to(tokens.dtype))[:, None, None, :] * torch.finfo(tokens.dtype).min
        encoder = self.encoder if self.config.is_modality_agnostic else self.text_encoder
        return self._run_tower(tokens, encoder, self.text_post_projection, additive, (input_ids.shape[1],),
                               output_hidden_states, output_attentions)

    # Common space -----------------------------------------------------------------------------------------------------
    def _check_heads(self, name: str) -> nn.Module:
        head = getattr(self, name, None)
        if head is None:
            raise ValueError(
                f"This VATT model has no common-space head `{name}` (config.modalities = {self.config.modalities}); "
                "joint-space embeddings need the video tower and the other modality's tower."
            )
        return head

    def project_video(self, video_pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """AGG of the video tower -> (video-audio space, video-text space or None) embeddings (FAC head)."""
        video_audio = self._check_heads("video_audio_projection")(video_pooled)
        head = getattr(self, "video_text_projection", None)
        return video_audio, (head(video_audio) if head is not None else None)

    @staticmethod
    def _video_views(pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.dim() == 6:
            if pixel_values.shape[1] != 1:
                raise ValueError(
                    f"pixel_values has {pixel_values.shape[1]} views per clip ([B, V, T, 3, H, W]); VattModel takes "
                    "one view: pass [B*V, T, 3, H, W] and regroup, or use VattForVideoClassification (averages views)"
                )
            return pixel_values[:, 0]
        return pixel_values

    @staticmethod
    def _audio_views(input_values: torch.Tensor) -> torch.Tensor:
        if input_values.dim() == 3 and input_values.shape[-1] == 1 and input_values.shape[1] > 1:
            raise ValueError(
                f"input_values of shape {tuple(input_values.shape)} looks like the original TF layout [batch, samples, "
                "1]; pass the waveform as [batch, samples]"
            )
        if input_values.dim() == 3:
            if input_values.shape[1] != 1:
                raise ValueError(
                    f"input_values has {input_values.shape[1]} windows per clip ([B, V, samples]); VattModel takes "
                    "one: pass [B*V, samples] and regroup, or use VattForAudioClassification (averages windows)"
                )
            return input_values[:, 0]
        return input_values

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> VattModelOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `[batch, frames, 3, height, width]`, *optional*):
            frames in [-1, 1] (`VattVideoProcessor` output; `[batch, 1, frames, 3, H, W]` is accepted too).
        input_values (`torch.FloatTensor` of shape `[batch, samples]`, *optional*):
            raw 48 kHz waveform (`VattFeatureExtractor` output; `[batch, 1, samples]` is accepted too).
        input_ids (`torch.LongTensor` of shape `[batch, words]` or `[batch, narrations, words]`, *optional*):
            `VattTokenizer` ids, 0 = padding.
        attention_mask (`torch.LongTensor` of the shape of `input_ids`, *optional*): 1 = word; defaults to
            `input_ids != 0` as the original.
        """
        if pixel_values is None and input_values is None and input_ids is None:
            raise ValueError("VattModel needs pixel_values (video), input_values (audio), input_ids (text) or several")
        output_hidden_states, output_attentions, return_dict = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )
        video = audio = text = None
        if pixel_values is not None:
            video = self.encode_video(self._video_views(pixel_values), output_hidden_states, output_attentions)
        if input_values is not None:
            audio = self.encode_audio(self._audio_views(input_values), output_hidden_states, output_attentions)
        narrations = None
        if input_ids is not None:
            if input_ids.dim() == 3:
                narrations = input_ids.shape[1]
                input_ids = input_ids.reshape(-1, input_ids.shape[-1])
                attention_mask = attention_mask.reshape(input_ids.shape) if attention_mask is not None else None
            text = self.encode_text(input_ids, attention_mask, output_hidden_states, output_attentions)

        # joint-space embeddings of every given modality this model has a head for; similarities of given pairs
        video_audio = video_text = audio_embeds = text_embeds = None
        logits_video_audio = logits_video_text = None
        if video is not None and getattr(self, "video_audio_projection", None) is not None:
            video_audio, video_text = self.project_video(video.pooler_output)
        if audio is not None and getattr(self, "audio_projection", None) is not None:
            audio_embeds = self.audio_projection(audio.pooler_output)
        if text is not None and getattr(self, "text_projection", None) is not None:
            text_embeds = self.text_projection(text.pooler_output)
        if video_audio is not None and audio_embeds is not None:
            logits_video_audio = self._similarity(video_audio, audio_embeds)
        if video_text is not None and text_embeds is not None:
            logits_video_text = self._similarity(video_text, text_embeds)
        if text_embeds is not None and narrations is not None:
            text_embeds = text_embeds.reshape(-1, narrations, text_embeds.shape[-1])

        output = VattModelOutput(
            logits_per_video_audio=logits_video_audio,
            logits_per_video_text=logits_video_text,
            video_audio_embeds=video_audio,
            video_text_embeds=video_text,
            audio_embeds=audio_embeds,
            text_embeds=text_embeds,
            video_last_hidden_state=video.last_hidden_state if video is not None else None,
            video_pooler_output=video.pooler_output if video is not None else None,
            audio_last_hidden_state=audio.last_hidden_state if audio is not None else None,
            audio_pooler_output=audio.pooler_output if audio is not None else None,
            text_last_hidden_state=text.last_hidden_state if text is not None else None,
            text_pooler_output=text.pooler_output if text is not None else None,
            video_hidden_states=video.hidden_states if video is not None else None,
            audio_hidden_states=audio.hidden_states if audio is not None else None,
            text_hidden_states=text.hidden_states if text is not None else None,
            video_attentions=video.attentions if video is not None else None,
            audio_attentions=audio.attentions if audio is not None else None,
            text_attentions=text.attentions if text is not None else None,
        )
        return output if return_dict else output.to_tuple()

    def _similarity(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        first = nn.functional.normalize(first, dim=-1)
        second = nn.functional.normalize(second, dim=-1)
        return first @ second.t() / self.config.contrastive_temperature

    # Feature accessors (Transformers naming; `pooler_output` is the joint-space embedding) ----------------------------
    def get_video_features(
        self,
        pixel_values: torch.Tensor,
        space: str = "audio",
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ):
        """Video tokens (`last_hidden_state`) and the video's joint-space embedding (`pooler_output`): the
        video-audio space (`space="audio"`, 512-d, original `toaud`) or the video-text space (`space="text"`,
        256-d, original `totxt`). Not L2-normalised (normalise for cosine similarity)."""
        if space not in ("audio", "text"):
            raise ValueError(f"space must be 'audio' (video-audio space) or 'text' (video-text space), got {space!r}")
        output_hidden_states, output_attentions, return_dict = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )
        tower = self.encode_video(self._video_views(pixel_values), output_hidden_states, output_attentions)
        video_audio, video_text = self.project_video(tower.pooler_output)
        if space == "text" and video_text is None:
            raise ValueError("This VATT model has no video-text head (no text tower)")
        result = BaseModelOutputWithPooling(
            last_hidden_state=tower.last_hidden_state,
            pooler_output=video_audio if space == "audio" else video_text,
            hidden_states=tower.hidden_states,
            attentions=tower.attentions,
        )
        return result if return_dict else result.to_tuple()

    # Transformers' multimodal name for the visual accessor
    get_image_features = get_video_features

    def get_audio_features(
        self,
        input_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ):
        """Audio tokens and the audio's video-audio-space embedding (`pooler_output`, original `audio.tovid`)."""
        output_hidden_states, output_attentions, return_dict = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )
        tower = self.encode_audio(self._audio_views(input_values), output_hidden_states, output_attentions)
        result = BaseModelOutputWithPooling(
            last_hidden_state=tower.last_hidden_state,
            pooler_output=self._check_heads("audio_projection")(tower.pooler_output),
            hidden_states=tower.hidden_states,
            attentions=tower.attentions,
        )
        return result if return_dict else result.to_tuple()

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ):
        """Word tokens and the text's video-text-space embedding (`pooler_output`, original `text.tovid`)."""
        output_hidden_states, output_attentions, return_dict = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )
        tower = self.encode_text(input_ids, attention_mask, output_hidden_states, output_attentions)
        result = BaseModelOutputWithPooling(
            last_hidden_state=tower.last_hidden_state,
            pooler_output=self._check_heads("text_projection")(tower.pooler_output),
            hidden_states=tower.hidden_states,
            attentions=tower.attentions,
        )
        return result if return_dict else result.to_tuple()


class VattForPreTraining(VattPreTrainedModel):
    """VATT pre-training: NCE between video and audio, MIL-NCE between video and the clip's narrations (original
    `AsymmetricNCE`, temperature 0.07, weights 1 / 1, loss = weighted mean), on the FAC common-space embeddings.

    `input_ids` `[B, L, N]` gives L narrations per clip (the original uses the clip's narration and up to 4
    neighbours); `[B, N]` is one per clip. `audio_mask` / `text_mask` `[B]` (1 = valid) drop clips without audio
    or text from the corresponding term, as the original's masks do. Negatives are the other clips of the batch
    (the original gathers them across replicas; on one device that is the batch).

    The loss is a batch-level contrastive loss, so this model does not take `num_items_in_batch`: `Trainer` then
    divides it by the accumulation steps itself (`accepts_loss_kwargs = False`).
    """

    accepts_loss_kwargs = False

    def __init__(self, config: VattConfig):
        super().__init__(config)
        missing = [m for m in ("visual",) if m not in config.modalities]
        if missing or len(config.modalities) < 2:
            raise ValueError(
                "VattForPreTraining needs the video tower and audio and/or text (config.modalities = "
                f"{config.modalities})"
            )
        self.vatt = VattModel(config)
        self.post_init()
        self._set_word_embeddings_trainable()

    def get_input_embeddings(self) -> nn.Module:
        return self.vatt.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.vatt.set_input_embeddings(value)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        return_loss: bool = True,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> VattForPreTrainingOutput | tuple:
        r"""
        pixel_values, input_values, input_ids, attention_mask: as `VattModel.forward`.
        audio_mask (`torch.Tensor` of shape `[batch]`, *optional*): 1 where the clip's audio is valid.
        text_mask (`torch.Tensor` of shape `[batch]`, *optional*): 1 where the clip's narrations are valid.
        return_loss (`bool`, defaults to `True`): compute the loss (needs the video and audio and/or text).
        """
        _, _, return_dict = self._output_flags(None, None, return_dict)
        outputs = self.vatt(
            pixel_values=pixel_values, input_values=input_values, input_ids=input_ids, attention_mask=attention_mask,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True,
        )
        loss = loss_video_audio = loss_video_text = None
        if return_loss:
            config = self.config
            terms, weights = [], []
            if outputs.audio_embeds is not None and config.video_audio_loss_weight > 0:
                loss_video_audio = contrastive_nce_loss(
                    outputs.video_audio_embeds, outputs.audio_embeds, config.contrastive_temperature, audio_mask
                )
                terms.append(config.video_audio_loss_weight * loss_video_audio)
                weights.append(config.video_audio_loss_weight)
            if outputs.text_embeds is not None and config.video_text_loss_weight > 0:
                text_embeds = outputs.text_embeds
                if text_embeds.dim() == 2:
                    text_embeds = text_embeds.unsqueeze(1)
                if text_embeds.shape[0] != outputs.video_text_embeds.shape[0]:
                    raise ValueError(
                        f"{text_embeds.shape[0]} clips of text for {outputs.video_text_embeds.shape[0]} videos: give "
                        "input_ids as [batch, words] or [batch, narrations, words] with the videos' batch size"
                    )
                loss_video_text = contrastive_nce_loss(
                    outputs.video_text_embeds, text_embeds, config.contrastive_temperature, text_mask
                )
                terms.append(config.video_text_loss_weight * loss_video_text)
                weights.append(config.video_text_loss_weight)
            if not terms:
                raise ValueError(
                    "VattForPreTraining needs pixel_values and input_values and/or input_ids to compute the loss "
                    "(or pass return_loss=False)"
                )
            loss = torch.stack(terms).sum() / sum(weights)
        output = VattForPreTrainingOutput(loss=loss, loss_video_audio=loss_video_audio,
                                          loss_video_text=loss_video_text, **dict(outputs.items()))
        return output if return_dict else output.to_tuple()


class _VattClassifierBase(VattPreTrainedModel):
    """Shared skeleton of the two classifiers: one tower, dropout, Linear on the AGG token, logits averaged over
    views, softmax or sigmoid."""

    _modality: str = ""
    _multi_label: bool = False
    # the loss is a sum over samples divided by `num_items_in_batch` when Trainer passes it (exact accumulation)
    accepts_loss_kwargs = True

    def __init__(self, config: VattConfig):
        super().__init__(config)
        if self._modality not in config.modalities:
            raise ValueError(
                f"{type(self).__name__} needs the {self._modality} tower (config.modalities = {config.modalities})"
            )
        self.num_labels = config.num_labels
        self.vatt = VattModel(config)
        if self._modality == "visual":
            dropout = config.video_classifier_dropout_prob
        else:
            dropout = config.audio_classifier_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.tower_width(self._modality), config.num_labels)
        self.post_init()
        self._set_word_embeddings_trainable()

    def get_input_embeddings(self) -> nn.Module:
        prefix = "video" if self._modality == "visual" else "audio"
        return getattr(self.vatt, f"{prefix}_embeddings").patch_embeddings

    def _encode(self, values, output_hidden_states, output_attentions) -> VattTowerOutput:
        raise NotImplementedError

    def _classify(self, values, labels, output_hidden_states, output_attentions, return_dict, num_items_in_batch):
        output_hidden_states, output_attentions, return_dict = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )
        views = None
        single_view_dims = 5 if self._modality == "visual" else 2
        if self._modality == "audio" and values.dim() == 3 and values.shape[-1] == 1 and values.shape[1] > 1:
            values = VattModel._audio_views(values)  # raises the TF-layout error
        if values.dim() == single_view_dims + 1:
            views = values.shape[1]
            values = values.reshape(-1, *values.shape[2:])
        tower = self._encode(values, output_hidden_states, output_attentions)
        pooled = tower.pooler_output
        logits = self.classifier(self.dropout(pooled))
        per_view_logits = None
        if views is not None:
            per_view_logits = logits.reshape(-1, views, logits.shape[-1])
            logits = per_view_logits.mean(dim=1)
        probabilities = torch.sigmoid(logits) if self._multi_label else torch.softmax(logits, dim=-1)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, self._multi_label, num_items_in_batch)
        output = VattClassifierOutput(
            loss=loss, logits=logits, probabilities=probabilities, per_view_logits=per_view_logits,
            pooled_output=pooled, hidden_states=tower.hidden_states, attentions=tower.attentions,
        )
        return output if return_dict else output.to_tuple()

    @property
    def loss_function(self):
        return vatt_classification_loss

    def _loss_kwargs(self, kwargs: dict):
        """`num_items_in_batch` (passed by `Trainer`); any other keyword is a mistake (e.g. the other modality)."""
        unknown = sorted(set(kwargs) - {"num_items_in_batch"})
        if unknown:
            raise TypeError(f"{type(self).__name__}.forward got unexpected keyword arguments {unknown}")
        return kwargs.get("num_items_in_batch")


class VattForVideoClassification(_VattClassifierBase):
    """Video classifier of the original fine-tuning (`VideoModel`): dropout 0.5 and a Linear on the video tower's AGG
    token, softmax. `[B, V, T, 3, H, W]` input (several views, e.g. 4 windows x 3 crops) averages the logits over the
    views before the softmax, as the original `PredictionAggregator`."""

    main_input_name = "pixel_values"
    _modality = "visual"
    _multi_label = False

    def _encode(self, values, output_hidden_states, output_attentions) -> VattTowerOutput:
        return self.vatt.encode_video(values, output_hidden_states, output_attentions)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> VattClassifierOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `[batch, frames, 3, H, W]` or `[batch, views, frames, 3, H, W]`):
            frames in [-1, 1] (`VattVideoProcessor` output).
        labels (`torch.LongTensor` of shape `[batch]`, *optional*): class indices; adds the cross-entropy loss.
        kwargs: `num_items_in_batch` from `Trainer` (exact gradient accumulation); other keywords are refused.
        """
        return self._classify(pixel_values, labels, output_hidden_states, output_attentions, return_dict,
                              self._loss_kwargs(kwargs))


class VattForAudioClassification(_VattClassifierBase):
    """Audio classifier of the original fine-tuning (`AudioModel`, AudioSet): a Linear on the audio tower's AGG
    token, sigmoid (multi-label). `[B, V, samples]` input averages the logits over the windows."""

    main_input_name = "input_values"
    _modality = "audio"
    _multi_label = True

    def _encode(self, values, output_hidden_states, output_attentions) -> VattTowerOutput:
        return self.vatt.encode_audio(values, output_hidden_states, output_attentions)

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> VattClassifierOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `[batch, samples]` or `[batch, windows, samples]`): raw 48 kHz
            waveform (`VattFeatureExtractor` output).
        labels (`torch.FloatTensor` of shape `[batch, num_labels]`, *optional*): 0/1 per class; adds the binary
            cross-entropy loss.
        kwargs: `num_items_in_batch` from `Trainer` (exact gradient accumulation); other keywords are refused.
        """
        return self._classify(input_values, labels, output_hidden_states, output_attentions, return_dict,
                              self._loss_kwargs(kwargs))


__all__ = [
    "VattClassifierOutput",
    "VattForAudioClassification",
    "VattForPreTraining",
    "VattForPreTrainingOutput",
    "VattForVideoClassification",
    "VattModel",
    "VattModelOutput",
    "VattPreTrainedModel",
    "VattTowerOutput",
    "contrastive_nce_loss",
    "resample_position_table",
    "vatt_classification_loss",
]
