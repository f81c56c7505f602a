"""A run: the progress lines and checkpoints every training job writes, and the paper's training
(the loop, its fast path on a GPU, a screen's choice)."""
