"""Frozen-backbone adapter host over Transformers' own CLAP HTS-AT audio encoder (`ClapAudioEncoder`).

HTS-AT (Chen et al., ICASSP 2022) is a Swin-V1 transformer over a log-mel spectrogram folded into a square image.
Transformers ships it as CLAP's audio tower; this host builds exactly that module (same parameter names, so a
`ClapAudioModel` state dict loads unchanged) and exposes what adapter methods such as DG-SCT need beside it:

* :meth:`HtsatAdapterHost.embed`: the front of the tower (`batch_norm` over mel bins, `reshape_mel2img` with its
  `freq_ratio` fold, patch embedding);
* :meth:`HtsatAdapterHost.attention_half` / :meth:`HtsatAdapterHost.mlp_half`: the two residual halves of one
  pre-norm (Swin-V1) block, so a module can be inserted between them; :meth:`HtsatAdapterHost.block` runs both;
* :meth:`HtsatAdapterHost.downsample` and :meth:`HtsatAdapterHost.final_norm`: stage-by-stage stepping;
* :meth:`HtsatAdapterHost.forward`: all of the above in order, equal to `ClapAudioEncoder.forward`.

It has the same shape as the Swin-V2 host (`modeling.common.swinv2_adapter_host`): stages are stepped by the caller,
block halves take and return `[batch, tokens, channels]` hidden states.

Where the original HTS-AT (RetroCirce/HTS-Audio-Transformer, as copied into DG-SCT) differs from Transformers'
`ClapAudioEncoder`, :class:`HtsatConfig` has a switch (original behaviour by default):

* `clamp_window_to_resolution`: the original shrinks a block's window (and its relative-position table) to the stage
  grid when the grid is not larger than the window, at construction. Transformers' CLAP builds every table for
  `window_size` and only clamps the partition at run time, which cannot run a stage smaller than the window.
  Identical whenever every stage grid is >= `window_size` (the released 256 x 256 / window 8 model).
* `drop_path_on_mlp`: the original applies stochastic depth to both residual branches; Transformers' Swin-V1 layers
  (and so CLAP) only to the attention branch. Training-only (identity in eval mode).
"""

from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import ClapAudioConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clap.modeling_clap import (
    ClapAudioAttention,
    ClapAudioEncoder,
    ClapAudioLayer,
    window_partition,
    window_reverse,
)

__all__ = ["HtsatAdapterHost", "HtsatConfig"]


@strict
class HtsatConfig(ClapAudioConfig):
    r"""
    HTS-AT audio tower: Transformers' `ClapAudioConfig` plus the spectrogram front-end settings and the switches for
    the original HTS-AT's behaviour. Defaults are the AudioSet HTS-AT used by DG-SCT (`esc_config.py`): 256 x 256
    spectrogram image from 64 mel bins (`freq_ratio` 4), patch 4 / stride 4, width 96, depths (2, 2, 6, 2), heads
    (4, 8, 16, 32), window 8, drop path 0.1, no dropout.

    Front-end (computed by the feature extractor, recorded here so the model states what it expects):
        sampling_rate (`int`, defaults to 32000), n_fft (`int`, defaults to 1024), hop_length (`int`, defaults to
        320), f_min (`float`, defaults to 50.0), f_max (`float`, defaults to 14000.0): torchlibrosa `Spectrogram` +
        `LogmelFilterBank` settings of the original (`esc_config.window_size`, `hop_size`, `fmin`, `fmax`).
        `num_mel_bins` (inherited) is the mel-bin count; `spec_size // num_mel_bins` is the `freq_ratio` fold.

    Original-behaviour switches (see the module docstring):
        clamp_window_to_resolution (`bool`, defaults to True): size a block's window and relative-position table to
            the stage grid when the grid is not larger than `window_size` (original). False = Transformers' CLAP.
        drop_path_on_mlp (`bool`, defaults to True): stochastic depth on the MLP branch too (original). False =
            Transformers' CLAP.

    Example:

    ```python
    >>> from modeling.common.htsat_adapter_host import HtsatAdapterHost, HtsatConfig
    >>> host = HtsatAdapterHost(HtsatConfig(spec_size=32, num_mel_bins=16, patch_embeds_hidden_size=8,
    ...                                     num_attention_heads=[1, 1, 2, 2], window_size=4))
    >>> host.freq_ratio
    2
    ```
    """

    model_type = "htsat"
    base_config_key = "audio_config"

    hidden_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.1
    sampling_rate: int = 32000
    n_fft: int = 1024
    hop_length: int = 320
    f_min: float = 50.0
    f_max: float = 14000.0
    clamp_window_to_resolution: bool = True
    drop_path_on_mlp: bool = True

    def validate_architecture(self):
        """Checks HTS-AT needs beyond CLAP's own (Transformers runs this after `__post_init__`)."""
        for name in ("spec_size", "num_mel_bins", "window_size", "patch_embeds_hidden_size", "n_fft", "hop_length"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"HtsatConfig.{name} must be >= 1, got {value}.")
        if self.spec_size % self.num_mel_bins != 0:
            raise ValueError(
                f"HtsatConfig.spec_size ({self.spec_size}) must be a multiple of num_mel_bins ({self.num_mel_bins}): "
                "the spectrogram is folded into a spec_size x spec_size image with freq_ratio = spec_size // num_mel_bins."
            )
        if len(self.depths) != len(self.num_attention_heads):
            raise ValueError(
                f"HtsatConfig.depths ({list(self.depths)}) and num_attention_heads ({list(self.num_attention_heads)}) "
                "must have one entry per stage."
            )
        for stage, heads in enumerate(self.num_attention_heads):
            width = self.patch_embeds_hidden_size * 2**stage
            if width % heads != 0:
                raise ValueError(
                    f"HtsatConfig: stage {stage} width {width} is not divisible by its {heads} attention heads."
                )
        if self.enable_fusion:
            raise ValueError("HtsatConfig.enable_fusion is not supported: HTS-AT as used here has no CLAP fusion.")
        if self.f_max <= self.f_min:
            raise ValueError(f"HtsatConfig.f_max ({self.f_max}) must be > f_min ({self.f_min}).")


class HtsatAdapterHost(nn.Module):
    r"""Transformers' `ClapAudioEncoder` (attribute `audio_encoder`, so `ClapAudioModel` keys load unchanged) with
    its front, block halves, downsampling and final norm callable one by one.

    Hidden states are `[batch, tokens, channels]` with tokens in row-major order of the stage grid
    (:meth:`stage_resolution`). `input_features` are log-mel spectrograms `[batch, 1, frames, num_mel_bins]` before
    the batch norm (what torchlibrosa's `LogmelFilterBank` returns in the original).
    """

    def __init__(self, config: ClapAudioConfig):
        super().__init__()
        self.config = config
        self.audio_encoder = ClapAudioEncoder(config)
        if getattr(config, "clamp_window_to_resolution", False):
            self._clamp_windows()

    def _clamp_windows(self):
        """Original HTS-AT: a stage whose grid is not larger than the window uses one window of the grid's size,
        with a relative-position table of that size (built here, at construction, like the original)."""
        for stage, resolution in zip(self.audio_encoder.layers, self.audio_encoder.input_resolutions):
            window = min(resolution)
            if window >= self.config.window_size:
                continue
            for layer in stage.blocks:
                attention = layer.attention.self
                layer.attention = ClapAudioAttention(
                    self.config, stage.dim, attention.num_attention_heads, window_size=window
                )
                layer.window_size = window
                layer.shift_size = 0

    # -- geometry -------------------------------------------------------------------------------------------------
    @property
    def freq_ratio(self) -> int:
        return self.audio_encoder.freq_ratio

    @property
    def num_stages(self) -> int:
        return len(self.audio_encoder.layers)

    def stage_depth(self, stage: int) -> int:
        return len(self.audio_encoder.layers[stage].blocks)

    def stage_width(self, stage: int) -> int:
        return self.audio_encoder.layers[stage].dim

    def stage_resolution(self, stage: int) -> tuple[int, int]:
        """Token grid `(height, width)` of the blocks of `stage`."""
        return tuple(self.audio_encoder.input_resolutions[stage])

    def stage_num_tokens(self, stage: int) -> int:
        height, width = self.stage_resolution(stage)
        return height * width

    def get_block(self, stage: int, index: int) -> ClapAudioLayer:
        return self.audio_encoder.layers[stage].blocks[index]

    # -- front ----------------------------------------------------------------------------------------------------
    def normalize_and_fold(self, input_features: torch.Tensor) -> torch.Tensor:
        """`batch_norm` over mel bins, then `reshape_mel2img`: `[B, 1, T, F]` -> `[B, 1, spec_size, spec_size]`."""
        encoder = self.audio_encoder
        normalized = encoder.batch_norm(input_features.transpose(1, 3)).transpose(1, 3)
        return encoder.reshape_mel2img(normalized)

    def embed(self, input_features: torch.Tensor) -> torch.Tensor:
        """Log-mel `[B, 1, T, F]` -> patch tokens `[B, tokens, patch_embeds_hidden_size]` of stage 0."""
        return self.audio_encoder.patch_embed(self.normalize_and_fold(input_features))

    # -- block halves ---------------------------------------------------------------------------------------------
    def attention_half(
        self, stage: int, index: int, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`x + drop_path(window_attention(layernorm_before(x)))` of one block; returns (hidden, attention probs)."""
        layer = self.get_block(stage, index)
        height, width = self.stage_resolution(stage)
        layer.set_shift_and_window_size((height, width))
        batch_size, _, channels = hidden_states.shape
        shortcut = hidden_states
        hidden_states = layer.layernorm_before(hidden_states).view(batch_size, height, width, channels)
        hidden_states, pad_values = layer.maybe_pad(hidden_states, height, width)
        _, height_pad, width_pad, _ = hidden_states.shape
        shift = layer.shift_size
        if shift > 0:
            hidden_states = torch.roll(hidden_states, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(hidden_states, layer.window_size)
        windows = windows.view(-1, layer.window_size * layer.window_size, channels)
        attn_mask = layer.get_attn_mask(height_pad, width_pad, dtype=hidden_states.dtype, device=windows.device)
        attention_outputs = layer.attention(windows, attn_mask, output_attentions=output_attentions)
        windows = attention_outputs[0].view(-1, layer.window_size, layer.window_size, channels)
        hidden_states = window_reverse(windows, layer.window_size, height_pad, width_pad)
        if shift > 0:
            hidden_states = torch.roll(hidden_states, shifts=(shift, shift), dims=(1, 2))
        if pad_values[3] > 0 or pad_values[5] > 0:
            hidden_states = hidden_states[:, :height, :width, :].contiguous()
        hidden_states = shortcut + layer.drop_path(hidden_states.view(batch_size, height * width, channels))
        return hidden_states, (attention_outputs[1] if output_attentions else None)

    def mlp_half(self, stage: int, index: int, hidden_states: torch.Tensor) -> torch.Tensor:
        """`x + output(intermediate(layernorm_after(x)))` (plus drop path with `drop_path_on_mlp`)."""
        layer = self.get_block(stage, index)
        branch = layer.output(layer.intermediate(layer.layernorm_after(hidden_states)))
        if getattr(self.config, "drop_path_on_mlp", False):
            branch = layer.drop_path(branch)
        return hidden_states + branch

    def block(
        self, stage: int, index: int, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One whole block (attention half then MLP half)."""
        hidden_states, attentions = self.attention_half(stage, index, hidden_states, output_attentions)
        return self.mlp_half(stage, index, hidden_states), attentions

    # -- between and after stages ---------------------------------------------------------------------------------
    def downsample(self, stage: int, hidden_states: torch.Tensor) -> torch.Tensor:
        """Patch merging at the end of `stage` (V1 style: LayerNorm(4C) then Linear(4C, 2C)); identity after the
        last stage."""
        merging = self.audio_encoder.layers[stage].downsample
        if merging is None:
            return hidden_states
        return merging(hidden_states, self.stage_resolution(stage))

    def final_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.audio_encoder.norm(hidden_states)

    def pool(self, normed_hidden_states: torch.Tensor, frames: int) -> BaseModelOutputWithPooling:
        """CLAP's output head over the normed last-stage tokens: the `[B, C, F', T']` map (time quarters un-folded)
        and its average (`pooler_output`), as `ClapAudioEncoder.forward` returns them."""
        encoder = self.audio_encoder
        batch_size, _, channels = normed_hidden_states.shape
        downscale = 2 ** (self.num_stages - 1)
        freq_size = frames // downscale // encoder.patch_stride[0]
        time_size = frames // downscale // encoder.patch_stride[1]
        feature_map = normed_hidden_states.permute(0, 2, 1).contiguous().reshape(batch_size, channels, freq_size, time_size)
        freq_bins = freq_size // self.freq_ratio
        feature_map = feature_map.reshape(batch_size, channels, freq_size // freq_bins, freq_bins, time_size)
        feature_map = feature_map.permute(0, 1, 3, 2, 4).contiguous().reshape(batch_size, channels, freq_bins, -1)
        pooled = encoder.avgpool(torch.flatten(feature_map, 2)).flatten(1)
        return BaseModelOutputWithPooling(last_hidden_state=feature_map, pooler_output=pooled)

    def forward(
        self, input_features: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> BaseModelOutputWithPooling:
        """The whole tower stepped through the host's pieces; equals `ClapAudioEncoder.forward` (its
        `hidden_states` are the per-stage outputs after downsampling, `[B, tokens, C]`)."""
        folded = self.normalize_and_fold(input_features)
        hidden_states = self.audio_encoder.patch_embed(folded)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for stage in range(self.num_stages):
            for index in range(self.stage_depth(stage)):
                hidden_states, attentions = self.block(stage, index, hidden_states, output_attentions)
            if output_attentions:
                all_attentions += (attentions,)
            hidden_states = self.downsample(stage, hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        output = self.pool(self.final_norm(hidden_states), folded.shape[2])
        output.hidden_states = all_hidden_states
        output.attentions = all_attentions
        return output
