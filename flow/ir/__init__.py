"""The dataflow graph and its stream types; the op registry."""
