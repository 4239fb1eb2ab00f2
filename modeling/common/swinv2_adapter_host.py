"""A frozen-backbone adapter host over Transformers' own ``Swinv2Model``.

Transformers' ``Swinv2Layer.forward`` runs a whole Swin-V2 block at once. Adapter methods (LAVisH, DG-SCT) need to
add their own modules *between* the two halves of every block and to advance two towers in lock step, so the host
exposes the steps of ``Swinv2Model.forward`` one by one:

```
hidden, dims = host.embed(pixel_values)
for stage in host.iter_stages():
    for layer in stage.blocks:
        hidden, _ = host.attention_half(layer, hidden, dims)   # x = x + drop_path(norm1(window_attention(x)))
        hidden = host.mlp_half(layer, hidden)                 # x = x + drop_path(norm2(mlp(x)))
    hidden, dims = host.downsample(stage, hidden, dims)      # patch merging (identity after the last stage)
sequence = host.final_norm(hidden)
```

Swin-V2 is "res-post-norm": the LayerNorm is applied to the OUTPUT of each half before the residual sum
(``layernorm_before`` of Transformers = ``norm1`` of timm, ``layernorm_after`` = ``norm2``).

The host wraps an actual ``Swinv2Model`` under the attribute ``swinv2`` (Transformers' ``base_model_prefix`` of
Swin-V2), so a Swin-V2 folder written by ``save_pretrained`` (``Swinv2Model`` or ``Swinv2ForImageClassification``)
loads into it unchanged and the parameter names are Transformers' own under that prefix. Every computation is done
by Transformers' modules and functions (patch embeddings, ``window_partition`` / ``window_reverse``, the layer's
padding, shifted-window mask and attention module, patch merging); the host only sequences them exactly as
``Swinv2Layer.forward`` / ``Swinv2Stage.forward`` do. With nothing inserted, ``host(pixel_values)`` equals
``Swinv2Model(pixel_values)`` bit for bit (tested).

Differences between timm 0.6.x Swin-V2 (what the original LAVisH and DG-SCT code runs) and Transformers' Swin-V2,
checked against timm 0.6.7's ``swin_transformer_v2.py``:

* Same: patch-merging concatenation order ``(0,0), (1,0), (0,1), (1,1)`` (row, column offsets) followed by the
  bias-free reduction and THEN the LayerNorm; downsampling at the end of each stage; a stage whose token grid is
  not larger than the window uses window = grid and no shift; cosine attention with ``logit_scale`` clamped at
  ``log(100)``; the continuous position bias MLP (``16 * sigmoid``) and its log-spaced coordinate table normalised
  by ``pretrained_window_size - 1`` (or ``window_size - 1``); exact GELU; LayerNorm epsilon 1e-5.
* Shifted-window mask: timm adds the -100 mask once; the installed Transformers adds the same mask twice (-200).
  Only the leak of masked pairs through the softmax differs (``exp(-100 + score)``), which is far below fp32
  resolution for common weights but not for every possible logit scale. ``timm_window_mask=True`` reproduces
  timm exactly (the mask handed to Transformers' attention is scaled so that the total equals timm's).
* Padding: timm 0.6.x accepts only its configured input size (grid divisible by the window); Transformers pads
  the token grid to a window multiple for other sizes. At the configured size both run the same computation.
* A 1 x 1 token grid gives NaN in timm 0.6.7 (the coordinate table is divided by ``window - 1 = 0``); Transformers
  guards it. Nothing to reproduce there: configs of converted checkpoints never have a 1 x 1 stage.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from transformers import Swinv2Config, Swinv2Model
from transformers.models.swinv2.modeling_swinv2 import (
    Swinv2Layer,
    Swinv2ModelOutput,
    Swinv2SelfAttention,
    Swinv2Stage,
    window_partition,
    window_reverse,
)

from .adapter_host import AdapterHost, HostStage

__all__ = ["Swinv2AdapterHost", "Swinv2HostStage", "TIMM_WINDOW_MASK_VALUE"]

# The value timm 0.6.x Swin-V2 adds (once) to attention scores of token pairs split by the cyclic shift.
TIMM_WINDOW_MASK_VALUE = -100.0


# the shared stage record, under this host's historical name
Swinv2HostStage = HostStage


@functools.cache
def _window_mask_additions() -> int:
    """How many times the installed ``Swinv2SelfAttention`` adds the window mask to its scores (1 or 2).

    Measured once on a 1-head, 2 x 2-window attention in float64 with a mask of -1 on one key: the ratio of that
    key's probability with and without the mask is ``exp(-additions)``.
    """
    probe_config = Swinv2Config(embed_dim=4, num_heads=[1], depths=[1], window_size=2, qkv_bias=True)
    # explicit CPU device: the first forward may happen under a meta or other default-device context; the probe's
    # random initialisation must not consume the caller's random numbers
    with torch.device("cpu"), torch.no_grad(), torch.random.fork_rng(devices=[]):
        attention = Swinv2SelfAttention(probe_config, dim=4, num_heads=1, window_size=2).double().eval()
        hidden = torch.linspace(-1.0, 1.0, 16, dtype=torch.float64).reshape(1, 4, 4)
        mask = torch.zeros(1, 4, 4, dtype=torch.float64)
        mask[..., 1] = -1.0
        unmasked = attention(hidden, None, output_attentions=True)[1]
        masked = attention(hidden, mask, output_attentions=True)[1]
    ratio = (masked[..., 1] / unmasked[..., 1]) / (masked[..., 0] / unmasked[..., 0])
    additions = round(float(-torch.log(ratio).mean()))
    if additions not in (1, 2):
        raise RuntimeError(
            f"Unexpected window-mask handling in the installed transformers.Swinv2SelfAttention (measured {additions} "
            "additions, expected 1 or 2); timm_window_mask cannot be honoured."
        )
    return additions


class Swinv2AdapterHost(AdapterHost):
    """Transformers' ``Swinv2Model`` split into steps so adapter modules can be inserted beside each block half.

    Args:
        config (`Swinv2Config`, *optional*): backbone configuration; a fresh ``Swinv2Model`` is built from it.
        model (`Swinv2Model`, *optional*): an existing backbone to wrap instead (e.g. from ``from_pretrained``).
        timm_window_mask (`bool`, defaults to False): add the shifted-window mask the way timm 0.6.x does (-100 once)
            instead of the way the installed Transformers does (see the module docstring). False keeps the host equal
            to ``Swinv2Model``; the LAVisH / DG-SCT ports turn it on for parity with their original code.

    The backbone is frozen by the owning model's trainable-parameter policy, not here; the host is a plain module.
    """

    def __init__(
        self,
        config: Swinv2Config | None = None,
        *,
        model: Swinv2Model | None = None,
        timm_window_mask: bool = False,
    ):
        super().__init__()
        if (config is None) == (model is None):
            raise ValueError(
                "Swinv2AdapterHost needs exactly one of `config` (a Swinv2Config) or `model` (a Swinv2Model)."
            )
        if model is None:
            if not isinstance(config, Swinv2Config):
                raise TypeError(f"`config` must be a transformers.Swinv2Config, got {type(config).__name__}.")
            model = Swinv2Model(config)
        elif not isinstance(model, Swinv2Model):
            raise TypeError(f"`model` must be a transformers.Swinv2Model, got {type(model).__name__}.")
        self.swinv2 = model
        self.timm_window_mask = timm_window_mask

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, timm_window_mask: bool = False, **kwargs):
        """Wrap ``Swinv2Model.from_pretrained(...)`` (a ``Swinv2Model`` or ``Swinv2ForImageClassification`` folder)."""
        model = Swinv2Model.from_pretrained(pretrained_model_name_or_path, **kwargs)
        return cls(model=model, timm_window_mask=timm_window_mask)

    @property
    def config(self) -> Swinv2Config:
        return self.swinv2.config

    @property
    def num_features(self) -> int:
        """Token width after the last stage."""
        return self.swinv2.num_features

    @property
    def stage_hidden_sizes(self) -> list[int]:
        return [stage.dim for stage in self.swinv2.encoder.layers]

    # ---- steps -------------------------------------------------------------------------------------------------

    def embed(
        self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch embedding, its LayerNorm (and absolute positions if configured). Returns ``(tokens, (h, w))``."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(
                f"Expected pixel_values of shape (batch, {self.config.num_channels}, height, width), "
                f"got {tuple(pixel_values.shape)}."
            )
        return self.swinv2.embeddings(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)

    @property
    def stage_modules(self) -> nn.ModuleList:
        return self.swinv2.encoder.layers

    def attention_half(
        self,
        layer: Swinv2Layer,
        hidden_states: torch.Tensor,
        input_dimensions: tuple[int, int],
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x + drop_path(layernorm_before(shifted_window_attention(x)))`` for one block.

        ``hidden_states`` is ``(batch, height * width, channels)``. Returns the updated tokens and, if
        ``output_attentions``, the attention probabilities of every window (else None). The steps are those of
        ``Swinv2Layer.forward``: pad to a window multiple, cyclic shift, window partition, the layer's attention
        with its shifted-window mask, window reverse, shift back, crop.
        """
        height, width = input_dimensions
        batch_size, num_tokens, channels = hidden_states.shape
        if num_tokens != height * width:
            raise ValueError(f"Got {num_tokens} tokens for a {height} x {width} grid.")
        window_size, shift_size = layer.window_size, layer.shift_size

        grid, pad_values = layer.maybe_pad(hidden_states.view(batch_size, height, width, channels), height, width)
        _, padded_height, padded_width, _ = grid.shape
        if shift_size > 0:
            grid = torch.roll(grid, shifts=(-shift_size, -shift_size), dims=(1, 2))
        windows = window_partition(grid, window_size).view(-1, window_size * window_size, channels)
        attention_mask = layer.get_attn_mask(
            padded_height, padded_width, dtype=hidden_states.dtype, device=windows.device
        )
        if attention_mask is not None and self.timm_window_mask:
            # Transformers' mask holds -100 where timm's does; scale it so the installed attention adds -100 in total
            attention_mask = attention_mask / _window_mask_additions()
        attention_outputs = layer.attention(windows, attention_mask, output_attentions=output_attentions)

        attended = attention_outputs[0].view(-1, window_size, window_size, channels)
        grid = window_reverse(attended, window_size, padded_height, padded_width)
        if shift_size > 0:
            grid = torch.roll(grid, shifts=(shift_size, shift_size), dims=(1, 2))
        if pad_values[3] > 0 or pad_values[5] > 0:
            grid = grid[:, :height, :width, :].contiguous()
        attended = grid.view(batch_size, height * width, channels)
        hidden_states = hidden_states + layer.drop_path(layer.layernorm_before(attended))
        return hidden_states, (attention_outputs[1] if output_attentions else None)

    def mlp_half(self, layer: Swinv2Layer, hidden_states: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(layernorm_after(mlp(x)))`` for one block."""
        mlp_output = layer.output(layer.intermediate(hidden_states))
        return hidden_states + layer.drop_path(layer.layernorm_after(mlp_output))

    def downsample(
        self, stage: Swinv2HostStage, hidden_states: torch.Tensor, input_dimensions: tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch merging at the end of ``stage`` (identity for the last stage). Returns ``(tokens, new dims)``."""
        if not stage.has_downsample:
            return hidden_states, input_dimensions
        height, width = input_dimensions
        merged = stage.module.downsample(hidden_states, input_dimensions)
        return merged, ((height + 1) // 2, (width + 1) // 2)

    def final_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The LayerNorm after the last stage (timm's ``norm``)."""
        return self.swinv2.layernorm(hidden_states)

    def pool(self, sequence_output: torch.Tensor) -> torch.Tensor:
        """Mean over tokens: ``Swinv2Model``'s pooler when it has one (bit-identical), else ``mean(dim=1)``."""
        if self.swinv2.pooler is None:
            return sequence_output.mean(dim=1)
        return torch.flatten(self.swinv2.pooler(sequence_output.transpose(1, 2)), 1)

    # ---- the plain backbone, stepped --------------------------------------------------------------------------

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        output_hidden_states_before_downsampling: bool = False,
        interpolate_pos_encoding: bool = False,
    ) -> Swinv2ModelOutput:
        """Run the backbone with nothing inserted; same outputs as ``Swinv2Model`` (``return_dict=True``).

        ``output_hidden_states_before_downsampling`` records each stage's tokens before patch merging (as the
        encoder's flag of that name does) instead of after.
        """
        hidden_states, dims = self.embed(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        all_reshaped = [_to_channels_first(hidden_states, dims)] if output_hidden_states else None
        all_attentions = [] if output_attentions else None

        for stage in self.iter_stages():
            attentions = None
            for layer in stage.blocks:
                hidden_states, attentions = self.block(layer, hidden_states, dims, output_attentions)
            before_downsampling, stage_dims = hidden_states, dims
            hidden_states, dims = self.downsample(stage, hidden_states, dims)
            if output_hidden_states:
                recorded, recorded_dims = (hidden_states, dims)
                if output_hidden_states_before_downsampling:
                    recorded, recorded_dims = before_downsampling, stage_dims
                all_hidden_states.append(recorded)
                all_reshaped.append(_to_channels_first(recorded, recorded_dims))
            if output_attentions:
                # Transformers records the attentions of the last block of every stage
                all_attentions.append(attentions)

        sequence_output = self.final_norm(hidden_states)
        pooled_output = self.pool(sequence_output) if self.swinv2.pooler is not None else None
        return Swinv2ModelOutput(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
            reshaped_hidden_states=tuple(all_reshaped) if output_hidden_states else None,
        )


def _to_channels_first(hidden_states: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    batch_size, _, channels = hidden_states.shape
    return hidden_states.view(batch_size, *dims, channels).permute(0, 3, 1, 2)
