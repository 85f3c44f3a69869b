"""The parts of a Transformer: attention and its backends, masks, positions, norms, feed-forward, blocks."""
