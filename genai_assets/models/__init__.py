"""From-scratch language models (Transformer, encoder–decoder, RNN/LSTM/GRU) and their loading.

Kept light: import the submodules explicitly (they import torch)."""
