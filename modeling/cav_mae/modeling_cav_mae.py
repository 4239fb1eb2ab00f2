"""PyTorch CAV-MAE: Contrastive Audio-Visual Masked Autoencoder (Gong et al., ICLR 2023).

Layout of the network (names used here -> names of the original `src/models/cav_mae.py`):

* `audio_embeddings` / `visual_embeddings` (`patch_embed_a/v`, `pos_embed_a/v`, `modality_a/v`): 16x16 patches + a
  2-D position table + a learned "modality type" vector. Audio `[B, T, 128]` is transposed to an image of height =
  mel bins and width = frames, so audio tokens are frequency-major: index = frequency_patch * T/16 + time_patch.
* `audio_layers` / `visual_layers` (`blocks_a/v`): modality-specific pre-norm ViT layers.
* `shared_layers` (`blocks_u`, `CavMaeSharedLayer`): layers shared by both modalities with THREE LayerNorm pairs
  sharing attention + MLP: `layernorm_before/after` (original `norm1/norm2`, the joint stream of concatenated
  audio+visual tokens), `audio_layernorm_before/after` (`norm1_a/norm2_a`) and `visual_layernorm_before/after`
  (`norm1_v/norm2_v`), each used on one modality alone; `forward(..., norm_set="joint" | "audio" | "visual")`.
* `audio_layernorm` / `visual_layernorm` / `joint_layernorm` (`norm_a`, `norm_v`, `norm`): final LayerNorms.
* `decoder` (pre-training only): the MAE decoder; `classifier` (`mlp_head`): LayerNorm + Linear on mean-pooled tokens.

There is no CLS token: every pooled representation is a mean over tokens.
"""


import math
import random
from dataclasses import dataclass
from typing import Unpack

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, TransformersKwargs, logging

from ..common.embeddings import PatchEmbeddings, sincos_2d
from ..common.layers import TransformerBlock
from .configuration_cav_mae import AUDIO_MASK_MODES, CLASSIFICATION_MODES, CavMaeConfig

logger = logging.get_logger(__name__)

SHARED_NORM_SETS = ("joint", "audio", "visual")
# the shared-layer streams each classification mode runs (a "joint" stream over one modality = missing-modality mode)
MODE_STREAMS = {
    "multimodal": ("joint",),
    "audioonly": ("audio",),
    "videoonly": ("visual",),
    "missingaudioonly": ("joint", "audio"),
    "missingvideoonly": ("joint", "visual"),
}

# Folders saved before the shared layer got its own LayerNorm names stored `layernorm_before.<set>.weight` in every
# block; `from_pretrained` renames those keys on load (Transformers' `key_mapping`: regex -> replacement of the match).
LEGACY_KEY_MAPPING = {
    rf"layernorm_{where}\.{old_set}\.": f"{new_prefix}layernorm_{where}."
    for where in ("before", "after")
    for old_set, new_prefix in (("default", ""), ("joint", ""), ("audio", "audio_"), ("visual", "visual_"))
}


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class CavMaeModelOutput(ModelOutput):
    """Output of `CavMaeModel`.

    Args:
        loss: contrastive InfoNCE loss on the (unmasked) clip embeddings, only with `return_loss=True` and both
            modalities (single direction or bidirectional per `config.bidirectional_contrastive_loss`, unweighted).
        audio_last_hidden_state (`[B, L_audio, D]`): audio tokens after the audio tower, the shared layers with the
            audio LayerNorm set and `audio_layernorm` -- the original `forward_feat` audio output.
        visual_last_hidden_state (`[B, L_visual, D]`, or `[B, T, L_visual, D]` for several frames): the same for frames.
        joint_last_hidden_state (`[B, L_audio + L_visual, D]`, or `[B, T, ...]` for several frames): the multimodal
            stream (audio tokens then visual tokens through the shared layers with the joint LayerNorm set and
            `joint_layernorm`); only when both modalities are given. With several frames the audio is paired with
            every frame.
        audio_embeds (`[B, D]`): mean-pooled, L2-normalised audio tokens (the retrieval embedding of the original
            `retrieval.py`).
        visual_embeds (`[B, D]`): the same for the visual tokens (over all frames when several are given).
        logits_per_audio (`[B_audio, B_visual]`): `audio_embeds @ visual_embeds.T / config.contrastive_temperature`.
        logits_per_visual (`[B_visual, B_audio]`): its transpose. The original single-direction loss is a
            cross-entropy over each row of `logits_per_visual` (every clip's frame picks its audio).
        audio_hidden_states / visual_hidden_states: per-layer states of the modality streams (embedding output, each
            modality-specific layer, each shared layer), with `output_hidden_states=True`.
        joint_hidden_states: input of the shared layers and the output of each, for the joint stream.
        audio_attentions / visual_attentions / joint_attentions: attention probabilities per layer
            (`[B, heads, N, N]`), with `output_attentions=True` (computed eagerly for that call).
    """

    loss: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    visual_last_hidden_state: torch.FloatTensor | None = None
    joint_last_hidden_state: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    visual_embeds: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_visual: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    joint_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None
    joint_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class CavMaeForPreTrainingOutput(ModelOutput):
    """Output of `CavMaeForPreTraining` (original `CAVMAE.forward` / `forward_encoder` / `forward_decoder`).

    Args:
        loss: `loss_mae + loss_contrastive`.
        loss_mae: `mae_loss_weight * (loss_mae_audio + loss_mae_visual)`.
        loss_mae_audio / loss_mae_visual: mean squared error over the removed patches (targets per-patch normalised
            when `norm_pix_loss`).
        loss_contrastive: `contrastive_loss_weight * InfoNCE` on the mean-pooled visible tokens.
        contrastive_accuracy: fraction of clips whose own audio (and visual, bidirectional) is the arg-max.
        audio_reconstruction (`[B, L_audio, patch_size**2]`) / visual_reconstruction (`[B, L_visual, 3 * patch_size**2]`):
            decoder predictions for every patch in original token order (the original `pred_a` / `pred_v`).
        audio_mask / visual_mask (`[B, L]`, float): 1 = removed, 0 = kept, in original token order.
        audio_ids_restore / visual_ids_restore (`[B, L]`, int64): argsort of the shuffle (un-shuffles the sequence).
        joint_last_hidden_state (`[B, kept_audio + kept_visual, D]`): the encoder latent (original `latent`), kept
            tokens in shuffled order, audio first.
        audio_last_hidden_state / visual_last_hidden_state: the contrastive-stream latents (original `latent_c_a/v`).
        *_hidden_states / *_attentions: per-layer states / attention probabilities of each stream and the decoder.
    """

    loss: torch.FloatTensor | None = None
    loss_mae: torch.FloatTensor | None = None
    loss_mae_audio: torch.FloatTensor | None = None
    loss_mae_visual: torch.FloatTensor | None = None
    loss_contrastive: torch.FloatTensor | None = None
    contrastive_accuracy: torch.FloatTensor | None = None
    audio_reconstruction: torch.FloatTensor | None = None
    visual_reconstruction: torch.FloatTensor | None = None
    audio_mask: torch.FloatTensor | None = None
    visual_mask: torch.FloatTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    visual_ids_restore: torch.LongTensor | None = None
    joint_last_hidden_state: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    visual_last_hidden_state: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    joint_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None
    joint_attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class CavMaeAudioVisualClassifierOutput(ModelOutput):
    """Output of `CavMaeForAudioVisualClassification`.

    Args:
        loss: classification loss (with `labels`), computed on `logits`.
        logits (`[B, num_labels]`): class scores. With several frames, the inverse link of the frame-averaged
            probabilities (see the class docstring), so `sigmoid`/`softmax` of them gives the averaged probabilities.
        per_frame_logits (`[B, T, num_labels]`): logits of every frame, only for `[B, T, 3, H, W]` input with a mode
            that uses frames.
        pooled_output (`[B(*T), D]`): the mean-pooled representation fed to the classifier.
        *_hidden_states / *_attentions: per-layer states / attention probabilities of the streams the mode runs.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    per_frame_logits: torch.FloatTensor | None = None
    pooled_output: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    visual_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    joint_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    visual_attentions: tuple[torch.FloatTensor, ...] | None = None
    joint_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class CavMaeStreams:
    """What `CavMaeModel.encode_streams` computed: tower outputs, the requested shared-layer streams (after their
    final LayerNorm) and, when asked for, per-stream hidden states / attentions as lists. Internal to the heads."""

    audio_tokens: torch.Tensor | None = None
    visual_tokens: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    visual: torch.Tensor | None = None
    joint: torch.Tensor | None = None
    audio_hidden_states: list | None = None
    visual_hidden_states: list | None = None
    joint_hidden_states: list | None = None
    audio_attentions: list | None = None
    visual_attentions: list | None = None
    joint_attentions: list | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Functional pieces (public: the tests and the conversion checks call them)
# ---------------------------------------------------------------------------------------------------------------------
def random_masking(
    tokens: torch.Tensor, mask_ratio: float, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE per-sample masking by sorting noise: small noise = kept.

    Keeps `int(L * (1 - mask_ratio))` tokens (the original's truncation). Returns the kept tokens in shuffled
    order `[B, L_keep, D]`, the mask `[B, L]` (float, 1 = removed, original order) and `ids_restore` `[B, L]`.
    With ratio 0 nothing is removed but the tokens are still permuted, exactly like the original.
    """
    batch_size, length, width = tokens.shape
    if noise.shape != (batch_size, length):
        raise ValueError(f"mask noise must have shape {(batch_size, length)}, got {tuple(noise.shape)}")
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    kept = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, width))
    mask = torch.ones(batch_size, length, device=tokens.device, dtype=tokens.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return kept, mask, ids_restore


def structure_audio_noise(
    noise: torch.Tensor,
    mask_ratio: float,
    mode: str,
    frequency_patches: int,
    time_patches: int,
    rng: random.Random | None = None,
) -> torch.Tensor:
    """Structured audio masking of the original ablations: force whole time columns / mel rows out.

    Sets the noise of the chosen columns (`"time"`: `int(time_patches * r)` of them), rows (`"freq"`:
    `int(frequency_patches * r)`) or both (`"tf"`: `int(time_patches * r * 0.7)` columns, then
    `int(frequency_patches * r * 0.7)` rows) to 1.1 so the argsort removes them; the rest of the removal count comes
    from the noise. The choice uses Python's `random` (module-level state unless `rng` is given) with the same call
    order as the original, so seeding `random` and passing the original `torch.rand` draw reproduces its masks.
    The original hard-codes a 8 x 64 grid; here the grid follows the config. Returns a new tensor.
    """
    if mode not in AUDIO_MASK_MODES or mode == "unstructured":
        raise ValueError(f"structured audio mask mode must be one of {AUDIO_MASK_MODES[1:]}, got {mode!r}")
    rng = rng if rng is not None else random
    batch_size = noise.shape[0]
    grid = noise.reshape(batch_size, frequency_patches, time_patches).clone()
    if mode == "time":
        for i in range(batch_size):
            for k in rng.sample(range(time_patches), int(time_patches * mask_ratio)):
                grid[i, :, k] = 1.1
    elif mode == "freq":
        for i in range(batch_size):
            for k in rng.sample(range(frequency_patches), int(frequency_patches * mask_ratio)):
                grid[i, k, :] = 1.1
    else:
        for i in range(batch_size):
            for k in rng.sample(range(time_patches), int(time_patches * mask_ratio * 0.7)):
                grid[i, :, k] = 1.1
        for i in range(batch_size):
            for k in rng.sample(range(frequency_patches), int(frequency_patches * mask_ratio * 0.7)):
                grid[i, k, :] = 1.1
    return grid.reshape(batch_size, -1)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`[B, C, H, W]` -> `[B, (H/p)*(W/p), p*p*C]`; within a patch the index is `(row*p + col)*C + channel`."""
    batch_size, channels, height, width = images.shape
    rows, cols = height // patch_size, width // patch_size
    x = images.reshape(batch_size, channels, rows, patch_size, cols, patch_size)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(batch_size, rows * cols, patch_size * patch_size * channels)


def audio_to_image(input_values: torch.Tensor) -> torch.Tensor:
    """Time-major fbank `[B, T, F]` -> one-channel image `[B, 1, F, T]` (height = mel bins, width = frames)."""
    return input_values.unsqueeze(1).transpose(2, 3)


def masked_reconstruction_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix_loss: bool
) -> torch.Tensor:
    """Mean squared error per patch, averaged over the removed patches only (original `forward_mae_loss`).

    With `norm_pix_loss` each target patch is normalised by its mean and UNBIASED variance (+1e-6), as the original.
    With nothing removed (mask ratio 0) the loss is 0; the original divides 0 by 0 and returns NaN.
    """
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss = ((prediction - target) ** 2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)


def contrastive_loss(
    audio_representation: torch.Tensor,
    visual_representation: torch.Tensor,
    temperature: float,
    bidirectional: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of the original `forward_contrastive` (unweighted); returns `(loss, accuracy)`.

    Representations are L2-normalised; `S = A V^T / temperature`. Single direction (default, as the original):
    `-mean(diag(log_softmax(S, dim=0)))`, i.e. every visual clip must pick its audio among the batch; accuracy is
    the fraction of columns whose arg-max is the diagonal. Bidirectional: the mean with the same on `S^T`.
    """
    audio = nn.functional.normalize(audio_representation, dim=-1)
    visual = nn.functional.normalize(visual_representation, dim=-1)
    similarity = torch.mm(audio, visual.t()) / temperature
    targets = torch.arange(similarity.shape[0], device=similarity.device)

    def one_direction(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nce = -torch.mean(torch.diag(nn.functional.log_softmax(scores, dim=0)))
        accuracy = torch.sum(torch.eq(torch.argmax(scores, dim=0), targets)) / scores.shape[0]
        return nce, accuracy

    nce, accuracy = one_direction(similarity)
    if bidirectional:
        nce_t, accuracy_t = one_direction(similarity.t())
        nce, accuracy = (nce + nce_t) / 2, (accuracy + accuracy_t) / 2
    return nce, accuracy


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    problem_type: str,
    num_labels: int,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Loss of a classification head per `problem_type`: MSE, cross-entropy or BCE-with-logits.

    Without `num_items_in_batch` it is the mean over label entries (samples for single-label, samples x classes for
    multi-label and multi-output regression: what `Trainer` counts as items, `labels.ne(-100).sum()`). With it, the
    sum divided by that count, so the micro-batches of gradient accumulation add up to the full batch's mean.
    """
    reduction = "mean" if num_items_in_batch is None else "sum"
    if problem_type == "regression":
        if num_labels == 1:
            logits, labels = logits.squeeze(-1), labels.squeeze(-1)
        loss = nn.functional.mse_loss(logits, labels.to(logits.dtype), reduction=reduction)
    elif problem_type == "single_label_classification":
        loss = nn.functional.cross_entropy(logits.view(-1, num_labels), labels.view(-1), reduction=reduction)
    else:
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction=reduction)
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
    return loss


def _collectors(enabled: bool, count: int) -> tuple:
    """`count` fresh lists to collect hidden states / attentions into, or Nones when not asked for.

    Module-level (not a closure in `forward`) so that `torch.compile(fullgraph=True)` traces it.
    """
    return tuple([[] if enabled else None for _ in range(count)])


def _run_layers(
    layers: nn.ModuleList,
    hidden_states: torch.Tensor,
    norm_set: str | None,
    all_hidden_states: list | None,
    all_attentions: list | None,
) -> torch.Tensor:
    """Run `layers` in sequence, appending each output / attention map to the given lists when they exist."""
    # plain blocks take no `norm_set`; only the shared layers choose a LayerNorm pair
    stream = {} if norm_set is None else {"norm_set": norm_set}
    for layer in layers:
        hidden_states, attention = layer(hidden_states, output_attentions=all_attentions is not None, **stream)
        if all_hidden_states is not None:
            all_hidden_states.append(hidden_states)
        if all_attentions is not None:
            all_attentions.append(attention)
    return hidden_states


def _as_tuple(items: list | None) -> tuple | None:
    return tuple(items) if items is not None else None


def hidden_state_selection(output_hidden_states) -> list[int] | None:
    """Indices chosen by `output_hidden_states=[i, ...]` (or `=i`), None for a plain flag; clear error otherwise.

    Same meaning as Transformers' output capturing: the indices select from the tuple every stream would return
    with `output_hidden_states=True` (negative ones count from its end); the tuple keeps its length and holds `None`
    where a state was not selected.
    """
    if output_hidden_states is None or isinstance(output_hidden_states, bool):
        return None
    if isinstance(output_hidden_states, int):
        return [output_hidden_states]
    if isinstance(output_hidden_states, (list, tuple)) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in output_hidden_states
    ):
        return list(output_hidden_states)
    raise ValueError(
        f"output_hidden_states must be a bool, a layer index or a list of layer indices, got {output_hidden_states!r}"
    )


def _keep_selected_hidden_states(output: ModelOutput, selection: list[int] | None) -> None:
    """Replace the unselected entries of every `*hidden_states` tuple of `output` by None (per stream)."""
    if selection is None:
        return
    for name in [key for key in output.keys() if key.endswith("hidden_states")]:
        states = output[name]
        count = len(states)
        wanted = {i % count for i in selection if -count <= i < count}
        output[name] = tuple(state if i in wanted else None for i, state in enumerate(states))


# ---------------------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------------------
class CavMaeSharedLayer(TransformerBlock):
    """A layer shared by both modalities (original `blocks_u`): one attention and one MLP, three LayerNorm pairs.

    The inherited `layernorm_before` / `layernorm_after` serve the joint stream (original `norm1` / `norm2`);
    `audio_layernorm_*` (`norm1_a` / `norm2_a`) and `visual_layernorm_*` (`norm1_v` / `norm2_v`) serve one modality
    alone. `forward(hidden_states, norm_set=...)` picks the pair.
    """

    def __init__(self, config: CavMaeConfig):
        super().__init__(
            config,
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
            layer_norm_eps=config.layer_norm_eps,
            hidden_act=config.hidden_act,
            qkv_bias=config.qkv_bias,
            attention_dropout=config.attention_probs_dropout_prob,
            hidden_dropout=config.hidden_dropout_prob,
        )
        width, eps = config.hidden_size, config.layer_norm_eps
        self.audio_layernorm_before = nn.LayerNorm(width, eps=eps)
        self.audio_layernorm_after = nn.LayerNorm(width, eps=eps)
        self.visual_layernorm_before = nn.LayerNorm(width, eps=eps)
        self.visual_layernorm_after = nn.LayerNorm(width, eps=eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        norm_set: str = "joint",
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if norm_set == "joint":
            before, after = self.layernorm_before, self.layernorm_after
        elif norm_set == "audio":
            before, after = self.audio_layernorm_before, self.audio_layernorm_after
        elif norm_set == "visual":
            before, after = self.visual_layernorm_before, self.visual_layernorm_after
        else:
            raise ValueError(f"unknown norm_set {norm_set!r}; a shared layer has {SHARED_NORM_SETS}")
        return self.residual_step(hidden_states, before, after, attention_mask, output_attentions, **kwargs)


class CavMaeAudioEmbeddings(nn.Module):
    """Normalised fbank `[B, T, num_mel_bins]` -> audio tokens `[B, L_audio, D]` (patches + position + modality)."""

    def __init__(self, config: CavMaeConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = PatchEmbeddings(1, config.hidden_size, config.patch_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_audio_patches, config.hidden_size))
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        expected = (self.config.audio_length, self.config.num_mel_bins)
        if input_values.dim() != 3 or tuple(input_values.shape[1:]) != expected:
            raise ValueError(
                f"input_values must be a time-major normalised fbank of shape [batch, {expected[0]}, {expected[1]}] "
                f"(config.audio_length, config.num_mel_bins), got {tuple(input_values.shape)}; "
                "CavMaeFeatureExtractor pads/cuts waveforms' fbanks to this length"
            )
        input_values = input_values.to(self.patch_embeddings.projection.weight.dtype)
        tokens = self.patch_embeddings(audio_to_image(input_values))
        return tokens + self.position_embeddings + self.modality_embedding


class CavMaeVisualEmbeddings(nn.Module):
    """Frames `[B, 3, H, W]` -> visual tokens `[B, L_visual, D]` (patches + position + modality)."""

    def __init__(self, config: CavMaeConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = PatchEmbeddings(config.num_channels, config.hidden_size, config.patch_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_visual_patches, config.hidden_size))
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (self.config.num_channels, size, size):
            raise ValueError(
                f"pixel_values must have shape [batch, {self.config.num_channels}, {size}, {size}] "
                f"(or [batch, frames, ...]), got {tuple(pixel_values.shape)}"
            )
        pixel_values = pixel_values.to(self.patch_embeddings.projection.weight.dtype)
        tokens = self.patch_embeddings(pixel_values)
        return tokens + self.position_embeddings + self.modality_embedding


class CavMaeDecoder(nn.Module):
    """The MAE decoder of pre-training: re-inserts mask tokens, adds decoder position/modality embeddings, runs
    `decoder_num_hidden_layers` layers and predicts the pixels of every audio and visual patch."""

    def __init__(self, config: CavMaeConfig):
        super().__init__()
        self.config = config
        width = config.decoder_hidden_size
        self.embed = nn.Linear(config.hidden_size, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.audio_modality_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.visual_modality_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.audio_position_embeddings = nn.Parameter(torch.zeros(1, config.num_audio_patches, width))
        self.visual_position_embeddings = nn.Parameter(torch.zeros(1, config.num_visual_patches, width))
        self.layers = nn.ModuleList(
            [
                TransformerBlock(
                    config,
                    width,
                    config.decoder_num_attention_heads,
                    config.decoder_intermediate_size,
                    layer_norm_eps=config.layer_norm_eps,
                    hidden_act=config.hidden_act,
                    qkv_bias=config.qkv_bias,
                    attention_dropout=config.attention_probs_dropout_prob,
                    hidden_dropout=config.hidden_dropout_prob,
                )
                for _ in range(config.decoder_num_hidden_layers)
            ]
        )
        self.layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.audio_prediction = nn.Linear(width, config.patch_size**2)
        self.visual_prediction = nn.Linear(width, config.patch_size**2 * config.num_channels)

    def forward(
        self,
        latent: torch.Tensor,
        audio_ids_restore: torch.Tensor,
        visual_ids_restore: torch.Tensor,
        num_kept_audio: int,
        all_hidden_states: list | None = None,
        all_attentions: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(latent)
        batch_size, _, width = x.shape
        num_audio = audio_ids_restore.shape[1]
        num_visual = visual_ids_restore.shape[1]
        num_kept_visual = x.shape[1] - num_kept_audio
        # Every sample removes the same number of tokens (true for all masking modes), so one count serves the batch.
        audio = torch.cat([x[:, :num_kept_audio], self.mask_token.expand(batch_size, num_audio - num_kept_audio, width)], 1)
        audio = torch.gather(audio, 1, audio_ids_restore.unsqueeze(-1).expand(-1, -1, width))
        visual = torch.cat(
            [x[:, num_kept_audio:], self.mask_token.expand(batch_size, num_visual - num_kept_visual, width)], 1
        )
        visual = torch.gather(visual, 1, visual_ids_restore.unsqueeze(-1).expand(-1, -1, width))
        # position first, then modality: the original's order of additions (keeps results bit-identical)
        audio = audio + self.audio_position_embeddings + self.audio_modality_embedding
        visual = visual + self.visual_position_embeddings + self.visual_modality_embedding
        x = torch.cat([audio, visual], dim=1)
        if all_hidden_states is not None:
            all_hidden_states.append(x)
        x = _run_layers(self.layers, x, None, all_hidden_states, all_attentions)
        x = self.layernorm(x)
        return self.audio_prediction(x[:, :num_audio]), self.visual_prediction(x[:, num_audio:])


class CavMaeClassificationHead(nn.Module):
    """LayerNorm + Linear on the mean-pooled representation (original `mlp_head`)."""

    def __init__(self, config: CavMaeConfig):
        super().__init__()
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layernorm(pooled_output))


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------
class CavMaePreTrainedModel(PreTrainedModel):
    """Weight initialisation and Transformers plumbing shared by the CAV-MAE models.

    Initialisation follows the original: Xavier-uniform Linear weights and zero biases, patch convolutions
    initialised like a Linear over the flattened patch, LayerNorms at 1/0, modality embeddings and the mask token
    N(0, 0.02), and every position table set to the fixed 2-D sin-cos table. Values loaded from a checkpoint are
    never overwritten (`transformers.initialization` skips them).

    Hidden states and attentions are collected by the forwards, not by Transformers' output capturing
    (`_can_record_outputs` + `capture_outputs`): those hooks record every call of a layer class into ONE
    `hidden_states` / `attentions` tuple, while CAV-MAE runs the same shared layers up to three times per forward
    (joint, audio and visual streams) and reports each stream in its own field (`audio_hidden_states`, ...).
    `output_hidden_states=[i, ...]` (or `=i`) keeps the meaning output capturing gives it: per stream, the tuple has
    its full length with `None` where an index was not selected (negative indices count from the end); anything
    else than a bool or integers raises a `ValueError`.
    """

    config: CavMaeConfig
    base_model_prefix = "cav_mae"
    main_input_name = "input_values"
    input_modalities = ("audio", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["CavMaeAudioEmbeddings", "CavMaeVisualEmbeddings", "TransformerBlock", "CavMaeSharedLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True
    # the class default for `trainable_position_embeddings=None` (original: CAVMAEFT tr_pos=True)
    _default_trainable_position_embeddings = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        config = self.config
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            # the original initialises the patch projection like nn.Linear on the flattened [D, C*p*p] weight
            fan_in = module.weight[0].numel()
            fan_out = module.weight.shape[0]
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                # the original leaves PyTorch's default Conv2d bias init
                init.uniform_(module.bias, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, CavMaeAudioEmbeddings):
            init.normal_(module.modality_embedding, std=config.initializer_range)
            table = sincos_2d(config.hidden_size, config.audio_frequency_patches, config.audio_time_patches)
            init.copy_(module.position_embeddings, table.unsqueeze(0))
        elif isinstance(module, CavMaeVisualEmbeddings):
            init.normal_(module.modality_embedding, std=config.initializer_range)
            table = sincos_2d(config.hidden_size, config.visual_grid_size, config.visual_grid_size)
            init.copy_(module.position_embeddings, table.unsqueeze(0))
        elif isinstance(module, CavMaeDecoder):
            for parameter in (module.mask_token, module.audio_modality_embedding, module.visual_modality_embedding):
                init.normal_(parameter, std=config.initializer_range)
            width = config.decoder_hidden_size
            audio_table = sincos_2d(width, config.audio_frequency_patches, config.audio_time_patches)
            visual_table = sincos_2d(width, config.visual_grid_size, config.visual_grid_size)
            init.copy_(module.audio_position_embeddings, audio_table.unsqueeze(0))
            init.copy_(module.visual_position_embeddings, visual_table.unsqueeze(0))

    @classmethod
    def from_pretrained(cls, *args, key_mapping: dict[str, str] | None = None, **kwargs):
        # Folders saved with the old named-LayerNorm-set keys load through a rename; a caller's mapping comes on top.
        loaded = super().from_pretrained(*args, key_mapping={**LEGACY_KEY_MAPPING, **(key_mapping or {})}, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if isinstance(model, CavMaePreTrainedModel):
            # Transformers re-applies the renames that were used, reversed, when saving; the legacy ones must not be,
            # so that a loaded old folder is saved in the current layout.
            legacy = set(LEGACY_KEY_MAPPING)
            conversions = getattr(model, "_weight_conversions", None) or []
            model._weight_conversions = [c for c in conversions if not set(c._original_source_patterns) <= legacy]
            # Loading re-creates the parameters, which resets `requires_grad`; re-apply the position-table policy.
            model._set_position_embeddings_trainable()
        return loaded

    def _set_position_embeddings_trainable(self) -> None:
        """Freeze or unfreeze every position table per `config.trainable_position_embeddings` (None: class default)."""
        trainable = self.config.trainable_position_embeddings
        if trainable is None:
            trainable = self._default_trainable_position_embeddings
        for name, parameter in self.named_parameters():
            if name.endswith("position_embeddings"):
                parameter.requires_grad_(trainable)

    def _output_flags(
        self, output_hidden_states, output_attentions, return_dict
    ) -> tuple[bool, bool, bool, list[int] | None]:
        """(collect hidden states, collect attentions, return a dataclass, selected hidden-state indices or None)."""
        config = self.config
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        return_dict = config.return_dict if return_dict is None else return_dict
        selection = hidden_state_selection(output_hidden_states)
        collect_hidden_states = bool(output_hidden_states) if selection is None else True
        return collect_hidden_states, bool(output_attentions), bool(return_dict), selection


class CavMaeModel(CavMaePreTrainedModel):
    """The CAV-MAE encoder: audio tower, visual tower, shared layers; token features, clip embeddings, similarity.

    `forward(input_values, pixel_values)`: either input alone runs that modality alone; both also run the joint
    stream and give the CLIP-like similarity logits. The per-modality token features equal the original
    `forward_feat` (modality-specific layers, shared layers with that modality's LayerNorm set, `norm_a/norm_v`).

    Several frames `[B, T, 3, H, W]`: every frame is encoded on its own (`visual_last_hidden_state` is
    `[B, T, L_visual, D]`, `visual_embeds` pools over all tokens of all frames); the joint stream pairs the audio
    with every frame. Hidden states / attentions of multi-frame streams are reported with batch `B * T`.
    """

    # The contrastive loss compares the clips of one batch, so it cannot be re-normalised over the micro-batches of
    # gradient accumulation: declining `num_items_in_batch` makes `Trainer` divide by the accumulation steps instead.
    accepts_loss_kwargs = False

    def __init__(self, config: CavMaeConfig):
        super().__init__(config)
        self.config = config
        self.audio_embeddings = CavMaeAudioEmbeddings(config)
        self.visual_embeddings = CavMaeVisualEmbeddings(config)
        self.audio_layers = nn.ModuleList([self._make_layer(config) for _ in range(config.num_modality_specific_layers)])
        self.visual_layers = nn.ModuleList([self._make_layer(config) for _ in range(config.num_modality_specific_layers)])
        self.shared_layers = nn.ModuleList([CavMaeSharedLayer(config) for _ in range(config.num_shared_layers)])
        self.audio_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.visual_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.joint_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()
        self._set_position_embeddings_trainable()

    @staticmethod
    def _make_layer(config: CavMaeConfig) -> TransformerBlock:
        return TransformerBlock(
            config,
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
            layer_norm_eps=config.layer_norm_eps,
            hidden_act=config.hidden_act,
            qkv_bias=config.qkv_bias,
            attention_dropout=config.attention_probs_dropout_prob,
            hidden_dropout=config.hidden_dropout_prob,
        )

    def get_input_embeddings(self) -> nn.Module:
        # audio is the main input (`main_input_name = "input_values"`)
        return self.audio_embeddings.patch_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.audio_embeddings.patch_embeddings = value

    # Stream helpers (also used by the heads) -------------------------------------------------------------------------
    def encode_modality_specific(
        self, tokens: torch.Tensor, modality: str, all_hidden_states: list | None = None, all_attentions: list | None = None
    ) -> torch.Tensor:
        """Embedded (possibly masked) tokens -> output of the audio (`modality="audio"`) or visual tower."""
        layers = self.audio_layers if modality == "audio" else self.visual_layers
        if all_hidden_states is not None:
            all_hidden_states.append(tokens)
        return _run_layers(layers, tokens, None, all_hidden_states, all_attentions)

    def encode_shared(
        self,
        tokens: torch.Tensor,
        norm_set: str,
        all_hidden_states: list | None = None,
        all_attentions: list | None = None,
        chained: bool = True,
    ) -> torch.Tensor:
        """Shared layers with the `"joint"`, `"audio"` or `"visual"` LayerNorm set, then the matching final LayerNorm.

        `chained=False` feeds `tokens` to every shared layer and keeps the last output (the original pre-training
        contrastive-stream quirk, see `CavMaeConfig.unchained_contrastive_stream`).
        """
        final_norm = {"joint": self.joint_layernorm, "audio": self.audio_layernorm, "visual": self.visual_layernorm}
        if norm_set not in final_norm:
            raise ValueError(f"norm_set must be one of {tuple(final_norm)}, got {norm_set!r}")
        if chained:
            hidden_states = _run_layers(self.shared_layers, tokens, norm_set, all_hidden_states, all_attentions)
        else:
            hidden_states = tokens
            for layer in self.shared_layers:
                hidden_states, attention = layer(tokens, norm_set=norm_set, output_attentions=all_attentions is not None)
                if all_hidden_states is not None:
                    all_hidden_states.append(hidden_states)
                if all_attentions is not None:
                    all_attentions.append(attention)
        return final_norm[norm_set](hidden_states)

    def encode_streams(
        self,
        audio_tokens: torch.Tensor | None,
        visual_tokens: torch.Tensor | None,
        streams: tuple[str, ...],
        num_frames: int | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        chained_modality_streams: bool = True,
    ) -> CavMaeStreams:
        """The one encoder skeleton every CAV-MAE head runs: towers, then the shared layers once per stream.

        `audio_tokens` / `visual_tokens` are embedded (possibly masked) tokens or None. Each modality given goes
        through its tower; then every name in `streams` runs the shared layers and its final LayerNorm:
        `"audio"` / `"visual"` on that tower's output with the modality LayerNorm pair, `"joint"` on the
        concatenation of the tower outputs present (audio first; audio paired with each of `num_frames` frames), so
        a joint stream over one modality is the original's missing-modality stream. `chained_modality_streams=False`
        is the original pre-training quirk (see `CavMaeConfig.unchained_contrastive_stream`).
        """
        result = CavMaeStreams()
        result.audio_hidden_states, result.visual_hidden_states, result.joint_hidden_states = _collectors(
            output_hidden_states, 3
        )
        result.audio_attentions, result.visual_attentions, result.joint_attentions = _collectors(output_attentions, 3)
        if audio_tokens is not None:
            result.audio_tokens = self.encode_modality_specific(
                audio_tokens, "audio", result.audio_hidden_states, result.audio_attentions
            )
        if visual_tokens is not None:
            result.visual_tokens = self.encode_modality_specific(
                visual_tokens, "visual", result.visual_hidden_states, result.visual_attentions
            )
        for stream in streams:
            if stream == "joint":
                parts = []
                if result.audio_tokens is not None:
                    paired = result.audio_tokens
                    if num_frames is not None and result.visual_tokens is not None:
                        paired = paired.repeat_interleave(num_frames, dim=0)
                    parts.append(paired)
                if result.visual_tokens is not None:
                    parts.append(result.visual_tokens)
                joint_input = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
                if result.joint_hidden_states is not None:
                    result.joint_hidden_states.append(joint_input)
                result.joint = self.encode_shared(
                    joint_input, "joint", result.joint_hidden_states, result.joint_attentions
                )
            elif stream == "audio":
                result.audio = self.encode_shared(
                    result.audio_tokens, "audio", result.audio_hidden_states, result.audio_attentions,
                    chained=chained_modality_streams,
                )
            elif stream == "visual":
                result.visual = self.encode_shared(
                    result.visual_tokens, "visual", result.visual_hidden_states, result.visual_attentions,
                    chained=chained_modality_streams,
                )
            else:
                raise ValueError(f"unknown stream {stream!r}; streams are 'audio', 'visual', 'joint'")
        return result

    @staticmethod
    def split_frames(pixel_values: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """`[B, T, C, H, W]` -> (`[B*T, C, H, W]`, T); `[B, C, H, W]` -> (itself, None)."""
        if pixel_values.dim() == 5:
            batch_size, num_frames = pixel_values.shape[:2]
            return pixel_values.reshape(batch_size * num_frames, *pixel_values.shape[2:]), num_frames
        return pixel_values, None

    def _embed_and_pool(self, tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
        pooled = tokens.reshape(batch_size, -1, tokens.shape[-1]).mean(dim=1)
        return nn.functional.normalize(pooled, dim=-1)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CavMaeModelOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `[batch, audio_length, num_mel_bins]`, *optional*):
            normalised Kaldi fbank, time-major (`CavMaeFeatureExtractor` output).
        pixel_values (`torch.FloatTensor` of shape `[batch, 3, H, W]` or `[batch, frames, 3, H, W]`, *optional*):
            ImageNet-normalised frames (`CavMaeImageProcessor` output).
        return_loss (`bool`, *optional*): also return the contrastive loss (needs both modalities).
        """
        if input_values is None and pixel_values is None:
            raise ValueError("CavMaeModel needs input_values (audio), pixel_values (frames) or both")
        output_hidden_states, output_attentions, return_dict, selection = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )

        has_both = input_values is not None and pixel_values is not None
        if has_both and input_values.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"input_values and pixel_values must have the same batch size, got {input_values.shape[0]} "
                f"and {pixel_values.shape[0]}"
            )
        if return_loss and not has_both:
            raise ValueError("return_loss=True needs both input_values and pixel_values")

        num_frames = frames = None
        if pixel_values is not None:
            frames, num_frames = self.split_frames(pixel_values)
        streams = self.encode_streams(
            self.audio_embeddings(input_values) if input_values is not None else None,
            self.visual_embeddings(frames) if frames is not None else None,
            streams=tuple(name for name, present in (("audio", input_values is not None),
                                                     ("visual", pixel_values is not None), ("joint", has_both)) if present),
            num_frames=num_frames,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

        # heads of the base model: pooled, normalised clip embeddings and their similarity
        audio_features, visual_features, joint_features = streams.audio, streams.visual, streams.joint
        audio_embeds = visual_embeds = logits_per_audio = logits_per_visual = loss = None
        if audio_features is not None:
            audio_embeds = self._embed_and_pool(audio_features, audio_features.shape[0])
        if visual_features is not None:
            batch_size = pixel_values.shape[0]
            visual_embeds = self._embed_and_pool(visual_features, batch_size)
            if num_frames is not None:
                visual_features = visual_features.reshape(batch_size, num_frames, *visual_features.shape[1:])
        if joint_features is not None:
            if num_frames is not None:
                joint_features = joint_features.reshape(pixel_values.shape[0], num_frames, *joint_features.shape[1:])
            logits_per_audio = audio_embeds @ visual_embeds.t() / self.config.contrastive_temperature
            logits_per_visual = logits_per_audio.t()
            if return_loss:
                loss, _ = contrastive_loss(
                    audio_embeds, visual_embeds, self.config.contrastive_temperature,
                    self.config.bidirectional_contrastive_loss,
                )

        output = CavMaeModelOutput(
            loss=loss,
            audio_last_hidden_state=audio_features,
            visual_last_hidden_state=visual_features,
            joint_last_hidden_state=joint_features,
            audio_embeds=audio_embeds,
            visual_embeds=visual_embeds,
            logits_per_audio=logits_per_audio,
            logits_per_visual=logits_per_visual,
            audio_hidden_states=_as_tuple(streams.audio_hidden_states) if input_values is not None else None,
            visual_hidden_states=_as_tuple(streams.visual_hidden_states) if pixel_values is not None else None,
            joint_hidden_states=_as_tuple(streams.joint_hidden_states) if has_both else None,
            audio_attentions=_as_tuple(streams.audio_attentions) if input_values is not None else None,
            visual_attentions=_as_tuple(streams.visual_attentions) if pixel_values is not None else None,
            joint_attentions=_as_tuple(streams.joint_attentions) if has_both else None,
        )
        _keep_selected_hidden_states(output, selection)
        return output if return_dict else output.to_tuple()

    def get_audio_features(
        self,
        input_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ):
        """Audio tokens (`last_hidden_state`, original `forward_feat` audio) and the L2-normalised mean-pooled
        embedding (`pooler_output`) as a `BaseModelOutputWithPooling`."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        out = self.forward(input_values=input_values, output_hidden_states=output_hidden_states,
                           output_attentions=output_attentions, return_dict=True)
        result = BaseModelOutputWithPooling(
            last_hidden_state=out.audio_last_hidden_state, pooler_output=out.audio_embeds,
            hidden_states=out.audio_hidden_states, attentions=out.audio_attentions,
        )
        return result if self._output_flags(None, None, return_dict)[2] else result.to_tuple()

    def get_visual_features(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ):
        """Visual tokens (original `forward_feat` visual) and the L2-normalised mean-pooled embedding."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        out = self.forward(pixel_values=pixel_values, output_hidden_states=output_hidden_states,
                           output_attentions=output_attentions, return_dict=True)
        result = BaseModelOutputWithPooling(
            last_hidden_state=out.visual_last_hidden_state, pooler_output=out.visual_embeds,
            hidden_states=out.visual_hidden_states, attentions=out.visual_attentions,
        )
        return result if self._output_flags(None, None, return_dict)[2] else result.to_tuple()


    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ):
        """Transformers' name for the visual accessor: the same as `get_visual_features`."""
        return self.get_visual_features(pixel_values, output_hidden_states, output_attentions, return_dict)


class CavMaeForPreTraining(CavMaePreTrainedModel):
    """CAV-MAE pre-training: masked encoder, MAE decoder, reconstruction + contrastive loss (original `CAVMAE`).

    Per call: audio/visual tokens are masked (`audio_noise` / `visual_noise` `[B, L]` uniform draws play the role
    of the original `torch.rand`; drawn with `torch.rand`, audio first, when not given, so a seeded run matches the
    original), only visible tokens enter the encoder, the joint stream feeds the decoder, and the modality streams
    (visible tokens only, modality LayerNorm sets) feed the contrastive loss.

    Difference from the original with more than one shared layer: the original's contrastive stream applies every
    shared layer to the same input (only the last one counts). Here the layers are chained, like every other path of
    the original; `config.unchained_contrastive_stream=True` reproduces the original behaviour.
    """

    _default_trainable_position_embeddings = False
    # batch-level contrastive loss: `Trainer` divides by the accumulation steps itself (see `CavMaeModel`)
    accepts_loss_kwargs = False

    def __init__(self, config: CavMaeConfig):
        super().__init__(config)
        self.cav_mae = CavMaeModel(config)
        self.decoder = CavMaeDecoder(config)
        self.post_init()
        self._set_position_embeddings_trainable()

    def get_input_embeddings(self) -> nn.Module:
        return self.cav_mae.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.cav_mae.set_input_embeddings(value)

    def audio_targets(self, input_values: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets of the audio: patches of the transposed fbank, `[B, L_audio, p*p]`."""
        return patchify(audio_to_image(input_values.to(self.decoder.embed.weight.dtype)), self.config.patch_size)

    def visual_targets(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets of a frame, `[B, L_visual, p*p*3]`."""
        return patchify(pixel_values.to(self.decoder.embed.weight.dtype), self.config.patch_size)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        visual_noise: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        visual_mask_ratio: float | None = None,
        audio_mask_mode: str | None = None,
        mae_loss_weight: float | None = None,
        contrastive_loss_weight: float | None = None,
        bidirectional_contrastive_loss: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CavMaeForPreTrainingOutput | tuple:
        r"""
        input_values (`[B, audio_length, num_mel_bins]`) and pixel_values (`[B, 3, H, W]`): both required.
        audio_noise (`[B, L_audio]`) / visual_noise (`[B, L_visual]`, *optional*): the uniform noise whose argsort
            decides which tokens are kept (smallest kept); for structured audio modes the chosen rows/columns are
            then forced out with Python's `random` (see `structure_audio_noise`).
        audio_mask_ratio, visual_mask_ratio, audio_mask_mode, mae_loss_weight, contrastive_loss_weight,
        bidirectional_contrastive_loss: per-call overrides of the config values (the original `forward` arguments).
        """
        if input_values is None or pixel_values is None:
            raise ValueError("CavMaeForPreTraining needs both input_values and pixel_values")
        if pixel_values.dim() == 5:
            if pixel_values.shape[1] != 1:
                raise ValueError("CavMaeForPreTraining takes one frame per clip ([B, 3, H, W] or [B, 1, 3, H, W])")
            pixel_values = pixel_values[:, 0]
        config = self.config
        audio_mask_ratio = config.audio_mask_ratio if audio_mask_ratio is None else audio_mask_ratio
        visual_mask_ratio = config.visual_mask_ratio if visual_mask_ratio is None else visual_mask_ratio
        audio_mask_mode = config.audio_mask_mode if audio_mask_mode is None else audio_mask_mode
        mae_loss_weight = config.mae_loss_weight if mae_loss_weight is None else mae_loss_weight
        contrastive_loss_weight = (
            config.contrastive_loss_weight if contrastive_loss_weight is None else contrastive_loss_weight
        )
        if bidirectional_contrastive_loss is None:
            bidirectional_contrastive_loss = config.bidirectional_contrastive_loss
        if audio_mask_mode not in AUDIO_MASK_MODES:
            raise ValueError(f"audio_mask_mode must be one of {AUDIO_MASK_MODES}, got {audio_mask_mode!r}")
        output_hidden_states, output_attentions, return_dict, selection = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )

        (decoder_hs,) = _collectors(output_hidden_states, 1)
        (decoder_attn,) = _collectors(output_attentions, 1)
        encoder = self.cav_mae

        # 1. embed and mask (the noise is drawn in the original order: audio first, then visual)
        audio = encoder.audio_embeddings(input_values)
        visual = encoder.visual_embeddings(pixel_values)
        batch_size = audio.shape[0]
        if audio_noise is None:
            audio_noise = torch.rand(batch_size, audio.shape[1], device=audio.device)
        if audio_mask_mode != "unstructured":
            audio_noise = structure_audio_noise(
                audio_noise, audio_mask_ratio, audio_mask_mode, config.audio_frequency_patches, config.audio_time_patches
            )
        audio, audio_mask, audio_ids_restore = random_masking(audio, audio_mask_ratio, audio_noise.to(audio.device))
        if visual_noise is None:
            visual_noise = torch.rand(batch_size, visual.shape[1], device=visual.device)
        visual, visual_mask, visual_ids_restore = random_masking(visual, visual_mask_ratio, visual_noise.to(visual.device))

        # 2. encoder on visible tokens only
        streams = encoder.encode_streams(
            audio, visual, streams=("joint", "audio", "visual"), output_hidden_states=output_hidden_states,
            output_attentions=output_attentions, chained_modality_streams=not config.unchained_contrastive_stream,
        )
        latent, latent_audio, latent_visual = streams.joint, streams.audio, streams.visual

        # 3. decoder + reconstruction loss
        zero = torch.zeros((), device=latent.device, dtype=latent.dtype)
        audio_reconstruction = visual_reconstruction = None
        if mae_loss_weight != 0:
            audio_reconstruction, visual_reconstruction = self.decoder(
                latent, audio_ids_restore, visual_ids_restore, audio.shape[1], decoder_hs, decoder_attn
            )
            loss_mae_audio = masked_reconstruction_loss(
                audio_reconstruction, self.audio_targets(input_values), audio_mask, config.norm_pix_loss
            )
            loss_mae_visual = masked_reconstruction_loss(
                visual_reconstruction, self.visual_targets(pixel_values), visual_mask, config.norm_pix_loss
            )
            loss_mae = mae_loss_weight * (loss_mae_audio + loss_mae_visual)
        else:
            loss_mae_audio = loss_mae_visual = loss_mae = zero

        # 4. contrastive loss on the mean-pooled visible tokens
        if contrastive_loss_weight != 0:
            nce, accuracy = contrastive_loss(
                latent_audio.mean(dim=1), latent_visual.mean(dim=1), config.contrastive_temperature,
                bidirectional_contrastive_loss,
            )
            loss_contrastive = contrastive_loss_weight * nce
        else:
            loss_contrastive, accuracy = zero, zero

        output = CavMaeForPreTrainingOutput(
            loss=loss_mae + loss_contrastive,
            loss_mae=loss_mae,
            loss_mae_audio=loss_mae_audio,
            loss_mae_visual=loss_mae_visual,
            loss_contrastive=loss_contrastive,
            contrastive_accuracy=accuracy,
            audio_reconstruction=audio_reconstruction,
            visual_reconstruction=visual_reconstruction,
            audio_mask=audio_mask,
            visual_mask=visual_mask,
            audio_ids_restore=audio_ids_restore,
            visual_ids_restore=visual_ids_restore,
            joint_last_hidden_state=latent,
            audio_last_hidden_state=latent_audio,
            visual_last_hidden_state=latent_visual,
            audio_hidden_states=_as_tuple(streams.audio_hidden_states),
            visual_hidden_states=_as_tuple(streams.visual_hidden_states),
            joint_hidden_states=_as_tuple(streams.joint_hidden_states),
            decoder_hidden_states=_as_tuple(decoder_hs) if audio_reconstruction is not None else None,
            audio_attentions=_as_tuple(streams.audio_attentions),
            visual_attentions=_as_tuple(streams.visual_attentions),
            joint_attentions=_as_tuple(streams.joint_attentions),
            decoder_attentions=_as_tuple(decoder_attn) if audio_reconstruction is not None else None,
        )
        _keep_selected_hidden_states(output, selection)
        return output if return_dict else output.to_tuple()


class CavMaeForAudioVisualClassification(CavMaePreTrainedModel):
    """CAV-MAE with the fine-tuning head (original `CAVMAEFT`): mean-pooled tokens -> LayerNorm -> Linear.

    Modes (`mode=`; the original names and meanings):

    * `"multimodal"`: audio + frame through the joint stream (`norm`), the default fine-tuning mode.
    * `"audioonly"`: audio through the audio-LayerNorm stream (`norm_a`) -- for audio-only fine-tuned models.
    * `"videoonly"`: the frame through the visual-LayerNorm stream (`norm_v`) -- for visual-only models.
    * `"missingaudioonly"`: for a MULTIMODAL model when only AUDIO is available (the video is missing): the average
      of the joint-LayerNorm and the audio-LayerNorm pooled audio features.
    * `"missingvideoonly"`: the same with only the frame available.

    Without `mode`, the model decides from its inputs and `config.finetuning_mode`: both inputs -> `"multimodal"`;
    one modality given to a model fine-tuned multimodally (`finetuning_mode="multimodal"`) -> `"missingaudioonly"` /
    `"missingvideoonly"`, the way the paper evaluates a multimodal model with a modality missing; one modality
    otherwise -> `"audioonly"` / `"videoonly"`. Callers (pipelines, training) pass inputs only, so every route gives
    the same answer.

    Several frames `[B, T, 3, H, W]` (the paper evaluates 10 frames per clip): every frame is classified and the
    per-frame probabilities are averaged -- sigmoid for `problem_type="multi_label_classification"`, softmax
    otherwise (regression: the values are averaged). `logits` are the inverse link of the averaged probabilities
    (`logit(p)` resp. `log(p)`, probabilities clamped to the dtype's eps), so applying sigmoid/softmax gives the
    averaged probabilities; `per_frame_logits` keeps every frame. In multimodal mode the audio is paired with every
    frame (its tower runs once).

    Losses with `labels` follow `config.problem_type` (inferred from the labels when unset, as in Transformers):
    cross-entropy (single-label), BCE-with-logits (multi-label, AudioSet), MSE (regression). Each is a mean over
    label entries; given `num_items_in_batch` (as `Trainer` does with gradient accumulation) it is the sum divided by
    that count instead, so accumulated micro-batches add up to the loss of the whole batch.
    """

    accepts_loss_kwargs = True

    def __init__(self, config: CavMaeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.cav_mae = CavMaeModel(config)
        self.classifier = CavMaeClassificationHead(config)
        self.post_init()
        self._set_position_embeddings_trainable()

    def get_input_embeddings(self) -> nn.Module:
        return self.cav_mae.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.cav_mae.set_input_embeddings(value)

    def resolve_mode(self, mode: str | None, has_audio: bool, has_visual: bool) -> str:
        """The mode used for the given inputs: `mode` if given (validated against them), else the model's choice."""
        if mode is None:
            if has_audio and has_visual:
                return "multimodal"
            missing_modality = self.config.finetuning_mode == "multimodal"
            if has_audio:
                return "missingaudioonly" if missing_modality else "audioonly"
            if has_visual:
                return "missingvideoonly" if missing_modality else "videoonly"
            raise ValueError("CavMaeForAudioVisualClassification needs input_values, pixel_values or both")
        if mode not in CLASSIFICATION_MODES:
            raise ValueError(f"mode must be one of {CLASSIFICATION_MODES}, got {mode!r}")
        needs_audio = mode in ("multimodal", "audioonly", "missingaudioonly")
        needs_visual = mode in ("multimodal", "videoonly", "missingvideoonly")
        if needs_audio and not has_audio:
            raise ValueError(f"mode {mode!r} needs input_values")
        if needs_visual and not has_visual:
            raise ValueError(f"mode {mode!r} needs pixel_values")
        return mode

    def _problem_type(self, labels: torch.Tensor | None) -> str:
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression" if labels is not None else None
                return "regression"
            if labels is None:
                return "single_label_classification"
            if labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        return self.config.problem_type

    def _average_frames(self, per_frame_logits: torch.Tensor, problem_type: str) -> torch.Tensor:
        eps = torch.finfo(per_frame_logits.dtype).eps
        if problem_type == "regression":
            return per_frame_logits.mean(dim=1)
        if problem_type == "multi_label_classification":
            probabilities = torch.sigmoid(per_frame_logits).mean(dim=1).clamp(eps, 1 - eps)
            return torch.log(probabilities) - torch.log1p(-probabilities)
        probabilities = torch.softmax(per_frame_logits, dim=-1).mean(dim=1).clamp_min(eps)
        return torch.log(probabilities)

    def _classify(self, pooled: torch.Tensor, num_frames: int | None, problem_type: str):
        """Head logits, averaged over frames when the clip has several (returns them too, else None)."""
        logits = self.classifier(pooled)
        if num_frames is None:
            return logits, None
        per_frame_logits = logits.reshape(-1, num_frames, logits.shape[-1])
        logits = per_frame_logits[:, 0] if num_frames == 1 else self._average_frames(per_frame_logits, problem_type)
        return logits, per_frame_logits

    def _loss(
        self, logits: torch.Tensor, labels: torch.Tensor, problem_type: str, num_items_in_batch=None
    ) -> torch.Tensor:
        return classification_loss(logits, labels, problem_type, self.num_labels, num_items_in_batch)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        mode: str | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CavMaeAudioVisualClassifierOutput | tuple:
        r"""
        input_values (`[B, audio_length, num_mel_bins]`, *optional*): normalised fbank.
        pixel_values (`[B, 3, H, W]` or `[B, T, 3, H, W]`, *optional*): frames.
        labels (`[B]` int64 for single-label, `[B, num_labels]` float for multi-label, *optional*).
        mode (`str`, *optional*): one of `multimodal`, `audioonly`, `videoonly`, `missingaudioonly`,
            `missingvideoonly` (see the class docstring); when omitted the model chooses from the inputs and
            `config.finetuning_mode`.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): number of label entries over all micro-batches of
            the optimisation step (passed by `Trainer`); the loss is then the sum divided by it.
        """
        num_items_in_batch = kwargs.get("num_items_in_batch")
        mode = self.resolve_mode(mode, input_values is not None, pixel_values is not None)
        output_hidden_states, output_attentions, return_dict, selection = self._output_flags(
            output_hidden_states, output_attentions, return_dict
        )
        encoder = self.cav_mae
        uses_audio = mode in ("multimodal", "audioonly", "missingaudioonly")
        uses_visual = mode in ("multimodal", "videoonly", "missingvideoonly")

        num_frames = frames = None
        if uses_visual:
            frames, num_frames = encoder.split_frames(pixel_values)
        streams = encoder.encode_streams(
            encoder.audio_embeddings(input_values) if uses_audio else None,
            encoder.visual_embeddings(frames) if uses_visual else None,
            streams=MODE_STREAMS[mode],
            num_frames=num_frames,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        if mode == "multimodal":
            pooled = streams.joint.mean(dim=1)
        elif mode == "audioonly":
            pooled = streams.audio.mean(dim=1)
        elif mode == "videoonly":
            pooled = streams.visual.mean(dim=1)
        else:
            # a multimodally fine-tuned model with one modality missing: average the joint-norm and the
            # modality-norm pooled features of the available modality (original `missing*only`)
            modality = streams.audio if mode == "missingaudioonly" else streams.visual
            pooled = (streams.joint.mean(dim=1) + modality.mean(dim=1)) / 2

        problem_type = self._problem_type(labels)
        logits, per_frame_logits = self._classify(pooled, num_frames, problem_type)

        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            loss = self._loss(logits, labels, problem_type, num_items_in_batch)
            if mode == "multimodal" and self.config.unimodal_loss_weight > 0:
                # the same head on each modality's own stream, from the tower outputs computed above
                audio_pooled = encoder.encode_shared(streams.audio_tokens, "audio").mean(dim=1)
                visual_pooled = encoder.encode_shared(streams.visual_tokens, "visual").mean(dim=1)
                audio_logits, _ = self._classify(audio_pooled, None, problem_type)
                visual_logits, _ = self._classify(visual_pooled, num_frames, problem_type)
                unimodal = self._loss(audio_logits, labels, problem_type, num_items_in_batch) + self._loss(
                    visual_logits, labels, problem_type, num_items_in_batch
                )
                loss = loss + self.config.unimodal_loss_weight * unimodal

        output = CavMaeAudioVisualClassifierOutput(
            loss=loss,
            logits=logits,
            per_frame_logits=per_frame_logits,
            pooled_output=pooled,
            audio_hidden_states=_as_tuple(streams.audio_hidden_states) if uses_audio else None,
            visual_hidden_states=_as_tuple(streams.visual_hidden_states) if uses_visual else None,
            joint_hidden_states=_as_tuple(streams.joint_hidden_states) if "joint" in MODE_STREAMS[mode] else None,
            audio_attentions=_as_tuple(streams.audio_attentions) if uses_audio else None,
            visual_attentions=_as_tuple(streams.visual_attentions) if uses_visual else None,
            joint_attentions=_as_tuple(streams.joint_attentions) if "joint" in MODE_STREAMS[mode] else None,
        )
        _keep_selected_hidden_states(output, selection)
        return output if return_dict else output.to_tuple()


__all__ = [
    "CavMaeAudioVisualClassifierOutput",
    "CavMaeForAudioVisualClassification",
    "CavMaeForPreTraining",
    "CavMaeForPreTrainingOutput",
    "CavMaeModel",
    "CavMaeModelOutput",
    "CavMaePreTrainedModel",
    "CavMaeSharedLayer",
    "classification_loss",
    "contrastive_loss",
    "masked_reconstruction_loss",
    "patchify",
    "random_masking",
    "structure_audio_noise",
]
