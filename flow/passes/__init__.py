"""Graph passes: float segments, layer lowering, streamlining, folding, FIFO sizing."""
