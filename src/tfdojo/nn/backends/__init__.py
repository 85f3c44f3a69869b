"""Attention backends beyond eager and sdpa; importing this package registers each one by name.

tiled         exact, FlashAttention-2 tiles + online softmax, O(T) memory, own backward
block_sparse  exact over a local / strided / global block layout
linear        kernelised attention φ(Q)(φ(K)ᵀV): elu + 1 or Performer random features
linformer     softmax attention over keys and values projected to a fixed length
"""

from tfdojo.nn.backends import linear, linformer, sparse, tiled

__all__ = ["linear", "linformer", "sparse", "tiled"]
