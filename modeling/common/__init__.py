"""Building blocks shared by more than one model family.

- :mod:`.attention`: :class:`MultiHeadSelfAttention` (fused qkv, eager / SDPA through Transformers' interface).
- :mod:`.layers`: :class:`TransformerBlock` (plain pre-norm ViT block; subclasses pick other LayerNorms through `residual_step`) and :class:`FeedForward`.
- :mod:`.embeddings`: :class:`PatchEmbeddings` and the fixed 2-D sin-cos position table :func:`sincos_2d`.
"""

from .attention import MultiHeadSelfAttention, eager_attention_forward
from .embeddings import PatchEmbeddings, sincos_1d, sincos_2d, square_grid_side
from .layers import FeedForward, TransformerBlock

__all__ = [
    "FeedForward",
    "MultiHeadSelfAttention",
    "PatchEmbeddings",
    "TransformerBlock",
    "eager_attention_forward",
    "sincos_1d",
    "sincos_2d",
    "square_grid_side",
]
