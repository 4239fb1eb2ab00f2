"""The pre-norm Transformer block shared by the ViT-style families.

A timm ViT block is ``x = x + attn(LN1(x)); x = x + mlp(LN2(x))``: :class:`TransformerBlock` is exactly that, with
one LayerNorm before the attention (``layernorm_before``) and one before the MLP (``layernorm_after``). A family whose
block needs more (CAV-MAE's shared layers pick one of three LayerNorm pairs per stream) subclasses it and calls
:meth:`TransformerBlock.residual_step` with the pair it chose, so attention, MLP and residuals are written once.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import MultiHeadSelfAttention


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
    """Pre-norm Transformer encoder block: ``x + attn(LN(x))`` then ``x + mlp(LN(x))``.

    Args:
        config: the model config (read for the attention implementation only).
        hidden_size, num_attention_heads, intermediate_size: block sizes.
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
        layer_norm_eps: float = 1e-5,
        hidden_act: str = "gelu",
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
    ):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attention = MultiHeadSelfAttention(config, hidden_size, num_attention_heads, qkv_bias, attention_dropout)
        self.layernorm_after = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = FeedForward(hidden_size, intermediate_size, hidden_act, hidden_dropout)
        self.dropout = nn.Dropout(hidden_dropout)

    def residual_step(
        self,
        hidden_states: torch.Tensor,
        layernorm_before: nn.Module,
        layernorm_after: nn.Module,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's computation with the given LayerNorm pair (subclasses with several pairs pick one)."""
        attn_output, attn_weights = self.attention(
            layernorm_before(hidden_states), attention_mask, output_attentions=output_attentions, **kwargs
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        hidden_states = hidden_states + self.mlp(layernorm_after(hidden_states))
        return hidden_states, attn_weights

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.residual_step(
            hidden_states, self.layernorm_before, self.layernorm_after, attention_mask, output_attentions, **kwargs
        )


__all__ = ["FeedForward", "TransformerBlock"]
