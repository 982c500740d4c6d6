"""The shared training loop (:mod:`genai_assets.training.loop`) and its checkpoints.

Kept light: import ``genai_assets.training.loop`` explicitly (it imports torch)."""
