"""Original HTS-AT (RetroCirce/HTS-Audio-Transformer, as copied into DG-SCT) -> Transformers `ClapAudioEncoder` keys.

Used by the DG-SCT converter (the audio tower, ``htsat.`` in its checkpoints) and for the standalone HTS-AT
checkpoints (PyTorch-Lightning files whose ``state_dict`` keys start with ``sed_model.``). Per block
``layers.{i}.blocks.{j}``:

===========================================  =============================================================
original HTS-AT                              Transformers ``ClapAudioEncoder``
===========================================  =============================================================
``bn0.*``                                    ``batch_norm.*`` (BatchNorm over mel bins, with running stats)
``patch_embed.proj.*`` / ``.norm.*``         ``patch_embed.proj.*`` / ``patch_embed.norm.*``
``norm1.*`` (pre-norm before attention)      ``layernorm_before.*``
``attn.qkv.{weight,bias}`` ``[3C, ...]``     ``attention.self.{query,key,value}.*`` (split in this order)
``attn.relative_position_bias_table``        ``attention.self.relative_position_bias_table``
``attn.relative_position_index``             ``attention.self.relative_position_index`` (same buffer)
``attn.proj.*``                              ``attention.output.dense.*``
``norm2.*`` / ``mlp.fc1.*`` / ``mlp.fc2.*``  ``layernorm_after.*`` / ``intermediate.dense.*`` / ``output.dense.*``
``layers.{i}.downsample.*``                  ``layers.{i}.downsample.*`` (LayerNorm(4C), then reduction)
``norm.*``                                   ``norm.*``
===========================================  =============================================================

Dropped with reasons: the torchlibrosa STFT / mel weights (``spectrogram_extractor.*``, ``logmel_extractor.*``; the
feature extractor computes the log-mel), ``attn_mask`` (recomputed per input), ``tscam_conv.*`` / ``head.*``
(HTS-AT's own AudioSet classifier).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .toolkit import KeyMap, Rule, drop, rename, split

__all__ = ["HTSAT_BACKBONES", "htsat_config_kwargs", "htsat_key_map", "htsat_rules"]

_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."
_CLAP_BLOCK = r"layers.\1.blocks.\2."

# `backbone_type` of the original -> (sample rate, hop size) it forces (`AVE/nets/net_trans.py`).
HTSAT_BACKBONES = {"audioset": (32000, 320), "esc-50": (32000, 320), "scv2": (16000, 160)}


def htsat_rules() -> list[Rule]:
    """Rules for keys relative to the HTS-AT root (``bn0...``, ``layers...``), targets relative to the encoder."""
    attention_parts = [_CLAP_BLOCK + f"attention.self.{part}" for part in ("query", "key", "value")]
    return [
        drop(r"spectrogram_extractor\.stft\.conv_(?:real|imag)\.weight",
             "torchlibrosa STFT basis: the feature extractor computes the spectrogram"),
        drop(r"logmel_extractor\.melW", "torchlibrosa mel filterbank: the feature extractor computes the log-mel"),
        drop(_BLOCK + r"attn_mask", "buffer: shifted-window attention mask, recomputed at run time"),
        drop(r"(?:tscam_conv|head)\.(?:weight|bias)", "HTS-AT's own audio-tagging head, unused by DG-SCT"),
        rename(r"bn0\.(weight|bias|running_mean|running_var|num_batches_tracked)", r"batch_norm.\1"),
        rename(r"patch_embed\.(proj|norm)\.(weight|bias)", r"patch_embed.\1.\2"),
        rename(_BLOCK + r"norm1\.(weight|bias)", _CLAP_BLOCK + r"layernorm_before.\3"),
        split(_BLOCK + r"attn\.qkv\.weight", [p + ".weight" for p in attention_parts]),
        split(_BLOCK + r"attn\.qkv\.bias", [p + ".bias" for p in attention_parts]),
        rename(
            _BLOCK + r"attn\.relative_position_bias_table", _CLAP_BLOCK + "attention.self.relative_position_bias_table"
        ),
        rename(_BLOCK + r"attn\.relative_position_index", _CLAP_BLOCK + "attention.self.relative_position_index"),
        rename(_BLOCK + r"attn\.proj\.(weight|bias)", _CLAP_BLOCK + r"attention.output.dense.\3"),
        rename(_BLOCK + r"norm2\.(weight|bias)", _CLAP_BLOCK + r"layernorm_after.\3"),
        rename(_BLOCK + r"mlp\.fc1\.(weight|bias)", _CLAP_BLOCK + r"intermediate.dense.\3"),
        rename(_BLOCK + r"mlp\.fc2\.(weight|bias)", _CLAP_BLOCK + r"output.dense.\3"),
        rename(r"layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)", r"layers.\1.downsample.\2"),
        rename(r"norm\.(weight|bias)", r"norm.\1"),
    ]


def htsat_key_map(source_prefix: str = "", target_prefix: str = "") -> KeyMap:
    """The HTS-AT key map for keys under the literal ``source_prefix`` (``"htsat."`` in DG-SCT, ``"sed_model."`` in
    the Lightning checkpoints), producing `ClapAudioEncoder` keys under ``target_prefix`` (``"audio_encoder."`` for
    a `ClapAudioModel` or an `HtsatAdapterHost`)."""
    return KeyMap(htsat_rules(), name="HTS-AT audio backbone").with_prefixes(source_prefix, target_prefix)


def htsat_config_kwargs(esc_config: Mapping[str, Any], backbone_type: str = "audioset") -> dict[str, Any]:
    """`HtsatConfig` keyword arguments from the original's ``esc_config`` values, given with their ``htsat_``
    prefix stripped or not (``spec_size``/``htsat_spec_size``, ``mel_bins``, ``n_fft``/``window_size`` (STFT),
    ``embed_dim``/``htsat_dim``, ``depths``/``htsat_depth``, ``num_heads``/``htsat_num_head``,
    ``window_size``/``htsat_window_size`` (attention), ``patch_size``, ``patch_stride``/``htsat_stride``, ``fmin``,
    ``fmax``). ``backbone_type`` sets the sample rate and hop size the original forces."""
    if backbone_type not in HTSAT_BACKBONES:
        raise ValueError(f"unknown HTS-AT backbone_type {backbone_type!r}; known: {sorted(HTSAT_BACKBONES)}")
    sampling_rate, hop_length = HTSAT_BACKBONES[backbone_type]

    def get(*names, default=None):
        for name in names:
            if name in esc_config:
                return esc_config[name]
        return default

    # In esc_config `window_size` is the STFT size; the attention window is `htsat_window_size`. The fixture layout
    # (`config.json["htsat"]`) names them `n_fft` and `window_size`.
    n_fft = get("n_fft", default=None)
    attention_window = get("htsat_window_size", default=None)
    if n_fft is None:
        n_fft = get("window_size", default=1024) if attention_window is not None else 1024
    if attention_window is None:
        attention_window = get("window_size", default=8)
    stride = get("patch_stride", "htsat_stride", default=(4, 4))
    embed_dim = get("embed_dim", "htsat_dim", default=96)
    depths = list(get("depths", "htsat_depth", default=(2, 2, 6, 2)))
    return {
        "spec_size": get("spec_size", "htsat_spec_size", default=256),
        "num_mel_bins": get("mel_bins", "num_mel_bins", default=64),
        "patch_size": get("patch_size", "htsat_patch_size", default=4),
        "patch_stride": list(stride) if not isinstance(stride, int) else [stride, stride],
        "patch_embeds_hidden_size": embed_dim,
        "depths": depths,
        "num_attention_heads": list(get("num_heads", "htsat_num_head", default=(4, 8, 16, 32))),
        "window_size": attention_window,
        "n_fft": n_fft,
        "hop_length": hop_length,
        "sampling_rate": sampling_rate,
        "f_min": float(get("fmin", "f_min", default=50.0)),
        "f_max": float(get("fmax", "f_max", default=14000.0)),
        # CLAP's `hidden_size` = the last stage's width
        "hidden_size": embed_dim * 2 ** (len(depths) - 1),
        "clamp_window_to_resolution": True,
        "drop_path_on_mlp": True,
    }
