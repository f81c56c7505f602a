"""The networks: activations, orthogonal matrices, layers, their penalties, and the zoo of
models built from them (the paper's; the thesis' programs use the same pieces)."""
