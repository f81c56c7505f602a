"""The thesis (Hlav 2019) experiments, each a module with its own models and loops.

- common: what the sections share (data as tensors, accuracy, the H1/H2 training loop, Glorot
  initialisation, the `collect` subcommand)
- rnn: H1, a vanilla RNN on sequential MNIST (§5, Figs. 7–8)
- lstm: H2, an LSTM sentiment classifier (§5, Figs. 9–10), its data in sentiment
- dense: the dense networks of §3 and the loop of H3 and H5
- linear: H3, deep linear networks, time to accuracy against depth (Fig. 2)
- deep: H5, deep tanh/ReLU networks (Fig. 3)
- theory: H4, Jacobian spectra at initialisation against free probability
- figures: every section's figures, from its table only (no torch)

This file imports nothing: orthojac.thesis.figures reads its constants without torch.
"""

# The `status` of an H2 row (orthojac.thesis.lstm); here, free of torch, for the figures.
TRAINED, STAND_IN, UNAVAILABLE = "trained", "generated stand-in", "data unavailable"
