"""Multi-head self-attention with one interface for the eager and the SDPA (and any registered) backend.

The module keeps the timm / original-ViT parameter layout: one fused ``qkv`` projection (``Linear(D, 3D)``)
followed by an output projection ``proj``. Every hf_av family converted from timm-style code (CAV-MAE, LAVisH,
DG-SCT) therefore maps its original ``attn.qkv`` / ``attn.proj`` weights one to one, without splitting tensors.

The attention kernel is chosen per call from ``config._attn_implementation`` through Transformers'
``ALL_ATTENTION_FUNCTIONS.get_interface`` with :func:`eager_attention_forward` as the fallback, so
``attn_implementation="eager" | "sdpa"`` at load time and ``model.set_attn_implementation(...)`` later both work.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import logging

logger = logging.get_logger(__name__)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax(q k^T * scaling + mask) v.

    Inputs are ``[batch, heads, tokens, head_dim]``; returns the output as ``[batch, tokens, heads, head_dim]``
    (the layout every Transformers attention backend returns) and the attention probabilities
    ``[batch, heads, tokens, tokens]``.
    """
    scores = torch.matmul(query, key.transpose(-2, -1)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    # softmax in fp32 keeps half-precision runs stable; the result is cast back to the activation dtype
    probabilities = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probabilities = nn.functional.dropout(probabilities, p=dropout, training=module.training)
    output = torch.matmul(probabilities, value).transpose(1, 2).contiguous()
    return output, probabilities


class MultiHeadSelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with a fused qkv projection.

    Args:
        config: the model's `PreTrainedConfig`; only ``config._attn_implementation`` is read, at every call, so
            switching the implementation at run time takes effect immediately.
        hidden_size: token width ``D``.
        num_attention_heads: number of heads; must divide ``hidden_size``.
        qkv_bias: whether the fused qkv projection has a bias (True in timm ViTs / CAV-MAE).
        attention_dropout: dropout on the attention probabilities (training only).
    """

    def __init__(
        self,
        config,
        hidden_size: int,
        num_attention_heads: int,
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
    ):
        super().__init__()
        if hidden_size % num_attention_heads != 0:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_attention_heads ({num_attention_heads})")
        self.config = config
        self.num_attention_heads = num_attention_heads
        self.head_dim = hidden_size // num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = attention_dropout
        # read by Transformers' SDPA backend: never causal, these are encoders
        self.is_causal = False
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, num_tokens, width = hidden_states.shape
        # [B, N, 3D] -> [3, B, heads, N, head_dim]; the (3, heads, head_dim) split order is the timm layout
        qkv = self.qkv(hidden_states).reshape(batch_size, num_tokens, 3, self.num_attention_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)

        implementation = self.config._attn_implementation or "eager"
        if output_attentions and implementation != "eager":
            # Fused kernels never materialise the probabilities; asking for them means computing this call eagerly.
            logger.warning_once(
                f"output_attentions=True is computed with the eager attention path (configured: {implementation!r})."
            )
            implementation = "eager"
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, num_tokens, width)
        attn_output = self.proj(attn_output)
        return attn_output, (attn_weights if output_attentions else None)


__all__ = ["MultiHeadSelfAttention", "eager_attention_forward"]
