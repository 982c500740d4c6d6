"""The names of the training precision setting, torch-free so every stage config can validate it.

What each name does is :class:`genai_assets.training.loop.Precision` (autocast, gradient scaler, TF32).
"""

from __future__ import annotations

# 'auto': bf16 autocast on CUDA with native bf16, fp16 + gradient scaler on older GPUs, fp32 on CPU.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def precision_problems(value: str) -> list[str]:
    """``[]`` if ``value`` names a precision, else the one problem, named."""
    return [] if value in PRECISIONS else [f"precision must be one of {PRECISIONS}, got {value!r}"]
