"""Neuron components PLND scores (torch-free, so light jobs can name them).

`ffn` is the FFN intermediate unit (the input of down_proj); `attn_q`, `attn_k`, `attn_v` are the
output dimensions of the query, key and value projections (paper §2.2).
"""

COMPONENTS: tuple[str, ...] = ("ffn", "attn_q", "attn_k", "attn_v")
ATTN_COMPONENTS: tuple[str, ...] = ("attn_q", "attn_k", "attn_v")
