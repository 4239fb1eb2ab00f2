"""Frozen-backbone adapter host over Transformers' own CLAP HTS-AT audio encoder (`ClapAudioEncoder`).

HTS-AT (Chen et al., ICASSP 2022) is a Swin-V1 transformer over a log-mel spectrogram folded into a square image.
Transformers ships it as CLAP's audio tower; this host builds exactly that module (same parameter names, so a
`ClapAudioModel` state dict loads unchanged) and exposes what adapter methods such as DG-SCT need beside it:

* `embed`: the front of the tower (`batch_norm` over mel bins, `reshape_mel2img` with its `freq_ratio` fold, patch
  embedding);
* `iter_stages`, `attention_half` / `mlp_half` (the two residual halves of one pre-norm Swin-V1 block, so a module
  can be inserted between them; `block` runs both), `downsample`, `final_norm`: stage-by-stage stepping;
* `forward`: all of the above in order, equal to `ClapAudioEncoder.forward` (tested).

Its interface is the Swin-V2 host's (`modeling.common.swinv2_adapter_host`): same method names, arguments and
stage records, so DG-SCT steps both towers the same way. The only difference in the blocks: HTS-AT is pre-norm
(Swin-V1), Swin-V2 res-post-norm.

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
from torch import nn
from transformers import ClapAudioConfig, ClapAudioModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clap.modeling_clap import (
    ClapAudioAttention,
    ClapAudioEncoder,
    ClapAudioLayer,
    ClapAudioStage,
    window_partition,
    window_reverse,
)

from .configuration import strict_config

from .adapter_host import AdapterHost, HostStage

__all__ = ["HtsatAdapterHost", "HtsatConfig", "HtsatHostStage"]


@strict_config
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
                "the spectrogram is folded into a spec_size x spec_size image with "
                "freq_ratio = spec_size // num_mel_bins."
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


# the shared stage record, under this host's historical name
HtsatHostStage = HostStage


class HtsatAdapterHost(AdapterHost):
    r"""Transformers' `ClapAudioEncoder` (attribute `audio_encoder`, so `ClapAudioModel` keys load unchanged) split
    into steps so adapter modules can be inserted beside each block half:

    ```
    hidden, dims = host.embed(input_features)                # batch norm, freq_ratio fold, patch embedding
    for stage in host.iter_stages():
        for layer in stage.blocks:
            hidden, _ = host.attention_half(layer, hidden, dims)  # x = x + drop_path(attention(norm_before(x)))
            hidden = host.mlp_half(layer, hidden)                # x = x + mlp(norm_after(x))
        hidden, dims = host.downsample(stage, hidden, dims)     # patch merging (identity after the last stage)
    sequence = host.final_norm(hidden)
    ```

    Hidden states are `[batch, height * width, channels]` (row-major token grid `dims`). `input_features` are
    log-mel spectrograms `[batch, 1, frames, num_mel_bins]` before the batch norm (what torchlibrosa's
    `LogmelFilterBank` returns in the original, and `DgSctFeatureExtractor` here).

    Args:
        config (`HtsatConfig` or `ClapAudioConfig`, *optional*): a fresh encoder is built from it. A plain
            `ClapAudioConfig` gives Transformers' behaviour (both switches off).
        model (`ClapAudioModel`, *optional*): an existing CLAP audio model whose encoder to wrap instead.
    """

    def __init__(self, config: ClapAudioConfig | None = None, *, model: ClapAudioModel | None = None):
        super().__init__()
        if (config is None) == (model is None):
            raise ValueError(
                "HtsatAdapterHost needs exactly one of `config` (a ClapAudioConfig) or `model` (a ClapAudioModel)."
            )
        if model is not None:
            if not isinstance(model, ClapAudioModel):
                raise TypeError(f"`model` must be a transformers.ClapAudioModel, got {type(model).__name__}.")
            config, encoder = model.config, model.audio_encoder
        else:
            if not isinstance(config, ClapAudioConfig):
                raise TypeError(f"`config` must be a ClapAudioConfig / HtsatConfig, got {type(config).__name__}.")
            encoder = ClapAudioEncoder(config)
        if config.enable_fusion:
            raise ValueError("HtsatAdapterHost does not support CLAP's feature fusion (enable_fusion=True).")
        self.config = config
        self.audio_encoder = encoder
        if getattr(config, "clamp_window_to_resolution", False):
            self._clamp_windows()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Wrap `ClapAudioModel.from_pretrained(...)`."""
        return cls(model=ClapAudioModel.from_pretrained(pretrained_model_name_or_path, **kwargs))

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

    # ---- geometry ----------------------------------------------------------------------------------------------
    @property
    def freq_ratio(self) -> int:
        return self.audio_encoder.freq_ratio

    @property
    def num_features(self) -> int:
        """Token width after the last stage."""
        return self.audio_encoder.num_features

    @property
    def stage_hidden_sizes(self) -> list[int]:
        return [stage.dim for stage in self.audio_encoder.layers]

    @property
    def stage_resolutions(self) -> list[tuple[int, int]]:
        """Token grid `(height, width)` of every stage's blocks."""
        return [tuple(resolution) for resolution in self.audio_encoder.input_resolutions]

    @property
    def stage_modules(self) -> nn.ModuleList:
        return self.audio_encoder.layers

    # ---- steps -------------------------------------------------------------------------------------------------
    def normalize_and_fold(self, input_features: torch.Tensor) -> torch.Tensor:
        """`batch_norm` over mel bins, then `reshape_mel2img`: `[B, 1, T, F]` -> `[B, 1, spec_size, spec_size]`."""
        encoder = self.audio_encoder
        normalized = encoder.batch_norm(input_features.transpose(1, 3)).transpose(1, 3)
        return encoder.reshape_mel2img(normalized)

    def embed(self, input_features: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Log-mel `[B, 1, T, F]` -> (patch tokens `[B, tokens, patch_embeds_hidden_size]`, stage-0 grid)."""
        if input_features.ndim != 4 or input_features.shape[1] != 1:
            raise ValueError(
                f"Expected input_features of shape (batch, 1, frames, mel_bins), got {tuple(input_features.shape)}."
            )
        if input_features.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"Expected {self.config.num_mel_bins} mel bins (num_mel_bins), got {input_features.shape[-1]}."
            )
        tokens = self.audio_encoder.patch_embed(self.normalize_and_fold(input_features))
        return tokens, self.stage_resolutions[0]

    def attention_half(
        self,
        layer: ClapAudioLayer,
        hidden_states: torch.Tensor,
        input_dimensions: tuple[int, int],
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`x + drop_path(window_attention(layernorm_before(x)))` of one (pre-norm, Swin-V1) block, the steps of
        `ClapAudioLayer.forward`: window clamp, pad, cyclic shift, partition, attention with the shifted-window mask,
        reverse, shift back, crop. Returns the tokens and, if `output_attentions`, the attention probabilities."""
        height, width = input_dimensions
        batch_size, num_tokens, channels = hidden_states.shape
        if num_tokens != height * width:
            raise ValueError(f"Got {num_tokens} tokens for a {height} x {width} grid.")
        layer.set_shift_and_window_size(input_dimensions)
        window, shift = layer.window_size, layer.shift_size
        shortcut = hidden_states
        grid = layer.layernorm_before(hidden_states).view(batch_size, height, width, channels)
        grid, pad_values = layer.maybe_pad(grid, height, width)
        _, padded_height, padded_width, _ = grid.shape
        if shift > 0:
            grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(grid, window).view(-1, window * window, channels)
        attention_mask = layer.get_attn_mask(
            padded_height, padded_width, dtype=hidden_states.dtype, device=windows.device
        )
        attention_outputs = layer.attention(windows, attention_mask, output_attentions=output_attentions)
        attended = attention_outputs[0].view(-1, window, window, channels)
        grid = window_reverse(attended, window, padded_height, padded_width)
        if shift > 0:
            grid = torch.roll(grid, shifts=(shift, shift), dims=(1, 2))
        if pad_values[3] > 0 or pad_values[5] > 0:
            grid = grid[:, :height, :width, :].contiguous()
        hidden_states = shortcut + layer.drop_path(grid.view(batch_size, height * width, channels))
        return hidden_states, (attention_outputs[1] if output_attentions else None)

    def mlp_half(self, layer: ClapAudioLayer, hidden_states: torch.Tensor) -> torch.Tensor:
        """`x + output(intermediate(layernorm_after(x)))`, with drop path too when `drop_path_on_mlp` (original)."""
        branch = layer.output(layer.intermediate(layer.layernorm_after(hidden_states)))
        if getattr(self.config, "drop_path_on_mlp", False):
            branch = layer.drop_path(branch)
        return hidden_states + branch

    def downsample(
        self, stage: HtsatHostStage, hidden_states: torch.Tensor, input_dimensions: tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch merging at the end of `stage` (V1 style: LayerNorm(4C) then Linear(4C, 2C)); identity for the last
        stage. Returns `(tokens, new dims)`."""
        if not stage.has_downsample:
            return hidden_states, input_dimensions
        height, width = input_dimensions
        return stage.module.downsample(hidden_states, input_dimensions), ((height + 1) // 2, (width + 1) // 2)

    def final_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The LayerNorm after the last stage (HTS-AT's `norm`; DG-SCT does not apply it)."""
        return self.audio_encoder.norm(hidden_states)

    def pool(self, sequence_output: torch.Tensor) -> BaseModelOutputWithPooling:
        """CLAP's output head over the normed last-stage tokens: the `[B, C, F', T']` map (time quarters un-folded)
        and its average (`pooler_output`), as `ClapAudioEncoder.forward` returns them."""
        encoder = self.audio_encoder
        batch_size, _, channels = sequence_output.shape
        downscale = 2 ** (len(encoder.layers) - 1)
        freq_size = self.config.spec_size // downscale // encoder.patch_stride[0]
        time_size = self.config.spec_size // downscale // encoder.patch_stride[1]
        feature_map = sequence_output.permute(0, 2, 1).contiguous().reshape(batch_size, channels, freq_size, time_size)
        freq_bins = freq_size // self.freq_ratio
        if freq_bins < 1:
            raise ValueError(
                f"CLAP's output head needs a last-stage grid of at least freq_ratio ({self.freq_ratio}) rows, got "
                f"{freq_size}; use `run_stages` for the tokens of such a small configuration."
            )
        feature_map = feature_map.reshape(batch_size, channels, freq_size // freq_bins, freq_bins, time_size)
        feature_map = feature_map.permute(0, 1, 3, 2, 4).contiguous().reshape(batch_size, channels, freq_bins, -1)
        pooled = encoder.avgpool(torch.flatten(feature_map, 2)).flatten(1)
        return BaseModelOutputWithPooling(last_hidden_state=feature_map, pooler_output=pooled)

    # ---- the plain tower, stepped ------------------------------------------------------------------------------
    def run_stages(
        self, input_features: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """Every stage with nothing inserted; returns the last-stage tokens BEFORE the final norm, the hidden states
        (patch embeddings and every stage's output after downsampling, `[B, tokens, C]`) and the attentions of the
        last block of every stage (when asked)."""
        hidden_states, dims = self.embed(input_features)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for stage in self.iter_stages():
            attentions = None
            for layer in stage.blocks:
                hidden_states, attentions = self.block(layer, hidden_states, dims, output_attentions)
            hidden_states, dims = self.downsample(stage, hidden_states, dims)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            if output_attentions:
                all_attentions.append(attentions)
        return (
            hidden_states,
            tuple(all_hidden_states) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
        )

    def forward(
        self, input_features: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> BaseModelOutputWithPooling:
        """The whole tower with nothing inserted; equals `ClapAudioEncoder.forward` (see `run_stages` for the
        hidden states and attentions)."""
        hidden_states, all_hidden_states, all_attentions = self.run_stages(
            input_features, output_hidden_states, output_attentions
        )
        output = self.pool(self.final_norm(hidden_states))
        output.hidden_states = all_hidden_states
        output.attentions = all_attentions
        return output
