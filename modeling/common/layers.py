"""The pre-norm Transformer block shared by the ViT-style families, with named LayerNorm sets.

A timm ViT block is ``x = x + attn(LN1(x)); x = x + mlp(LN2(x))``. CAV-MAE's shared ("unified") block keeps ONE
attention and ONE MLP but THREE pairs of LayerNorms (joint, audio, visual) and picks the pair per call. This block
generalises that: it owns ``layernorm_before[name]`` / ``layernorm_after[name]`` for every name in
``norm_sets`` and ``forward(hidden_states, norm_set=name)`` selects the pair. A plain ViT block is the special case
``norm_sets=("default",)``. Later families (LAVisH, DG-SCT, VATT) reuse it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import MultiHeadSelfAttention

DEFAULT_NORM_SET = "default"


class FeedForward(nn.Module):
    """Two-layer MLP ``fc2(act(fc1(x)))`` (timm ``Mlp`` layout: ``fc1``, ``fc2``)."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        # "gelu" in Transformers' ACT2FN is the exact (erf) GELU, the same as torch.nn.GELU()
        self.activation = ACT2FN[hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class TransformerBlock(GradientCheckpointingLayer):
    """Pre-norm Transformer encoder block with one or more named LayerNorm sets sharing attention and MLP.

    Args:
        config: the model config (read for the attention implementation only).
        hidden_size, num_attention_heads, intermediate_size: block sizes.
        norm_sets: names of the LayerNorm pairs; the first one is used when ``forward`` gets no ``norm_set``.
        layer_norm_eps: LayerNorm epsilon.
        hidden_act: MLP activation name from ``transformers.activations.ACT2FN``.
        qkv_bias: bias of the fused qkv projection.
        attention_dropout, hidden_dropout: dropout probabilities (0 in every converted checkpoint).

    Being a ``GradientCheckpointingLayer``, the block is re-computed in the backward pass when the owning model has
    gradient checkpointing enabled. Pass ``hidden_states`` positionally (required by re-entrant checkpointing).
    Returns ``(hidden_states, attention_probabilities_or_None)``.
    """

    def __init__(
        self,
        config,
        hidden_size: int,
        num_attention_heads: int,
        intermediate_size: int,
        norm_sets: Sequence[str] = (DEFAULT_NORM_SET,),
        layer_norm_eps: float = 1e-5,
        hidden_act: str = "gelu",
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
    ):
        super().__init__()
        if not norm_sets:
            raise ValueError("norm_sets must name at least one LayerNorm set")
        self.norm_sets = tuple(norm_sets)
        self.layernorm_before = nn.ModuleDict({name: nn.LayerNorm(hidden_size, eps=layer_norm_eps) for name in self.norm_sets})
        self.attention = MultiHeadSelfAttention(config, hidden_size, num_attention_heads, qkv_bias, attention_dropout)
        self.layernorm_after = nn.ModuleDict({name: nn.LayerNorm(hidden_size, eps=layer_norm_eps) for name in self.norm_sets})
        self.mlp = FeedForward(hidden_size, intermediate_size, hidden_act, hidden_dropout)
        self.dropout = nn.Dropout(hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        norm_set: str | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        name = self.norm_sets[0] if norm_set is None else norm_set
        if name not in self.layernorm_before:
            raise ValueError(f"unknown norm_set {name!r}; this block has {list(self.norm_sets)}")
        attn_output, attn_weights = self.attention(
            self.layernorm_before[name](hidden_states), attention_mask, output_attentions=output_attentions, **kwargs
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        hidden_states = hidden_states + self.mlp(self.layernorm_after[name](hidden_states))
        return hidden_states, attn_weights


__all__ = ["DEFAULT_NORM_SET", "FeedForward", "TransformerBlock"]
