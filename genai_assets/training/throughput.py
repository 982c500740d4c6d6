"""Training throughput: FLOPs per token, the device's measured matmul peak, model FLOPs utilisation.

MFU = training tokens/s × FLOPs per token ÷ peak FLOP/s of the device(s), with

    FLOPs per token = 6·N + 12·L·T·C

(N parameters, L layers, T the training sequence length, C the model width: the matmuls of the
forward and backward pass plus the attention scores, as in the PaLM paper's appendix B) — the
formula of ``benchmarks/bench_models.py`` and ``benchmarks/bench_gpu.py``, used for every figure
the project reports. Approximations, stated: recurrent models have no attention term; N counts
every parameter (embedding tables too); a LoRA fine-tune is counted as 6·N although the frozen
weights need no weight gradients (closer to 4·N), so its MFU is an upper estimate.

The peak is *measured*, not read from a data sheet: the best time of a large square matmul on the
device — bf16 on CUDA (fp16 on GPUs without native bf16), whatever precision the run itself used, so
an fp32 run's MFU shows how far it is from the card's best; fp32 on CPU, with the current torch
thread count. Measured once per process and device (about 0.2 s on a CPU, milliseconds on a GPU).
"""

from __future__ import annotations

import functools
import time

import torch

RECURRENT_KINDS = ("rnn", "lstm", "gru")


def flops_per_token(n_parameters: int, n_layer: int = 0, seq_len: int = 0, width: int = 0) -> float:
    """Training FLOPs per token: ``6·N + 12·L·T·C`` (no attention term when ``n_layer`` is 0)."""
    return 6.0 * n_parameters + 12.0 * n_layer * seq_len * width


def attention_shape(config) -> tuple[int, int]:
    """``(layers with attention, width)`` of a model config (ours or a transformers one); RNNs → (0, 0)."""
    if getattr(config, "kind", None) in RECURRENT_KINDS:
        return 0, 0
    layers = getattr(config, "n_layer", None) or getattr(config, "num_hidden_layers", None)
    if layers is None:  # the encoder–decoder: every layer attends
        layers = getattr(config, "n_encoder_layers", 0) + getattr(config, "n_decoder_layers", 0)
    width = (
        getattr(config, "n_embd", None)
        or getattr(config, "hidden_size", None)
        or getattr(config, "d_model", 0)
    )
    return int(layers or 0), int(width or 0)


def model_flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """:func:`flops_per_token` of ``model`` (distinct parameters; shape from ``model.config``)."""
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    layers, width = attention_shape(getattr(model, "config", None))
    return flops_per_token(n_parameters, layers, seq_len, width)


@functools.lru_cache(maxsize=8)
def _measured_peak(device: str, threads: int) -> tuple[float, str]:
    device_type = torch.device(device).type
    if device_type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
        size, repeats = 8192, 10
    else:
        dtype, size, repeats = torch.float32, 1024, 5
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for attempt in range(repeats + 1):  # the first is a warm-up
        if device_type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        a @ b
        if device_type == "cuda":
            torch.cuda.synchronize(device)
        if attempt:
            best = min(best, time.perf_counter() - started)
    name = str(dtype).removeprefix("torch.")
    where = torch.cuda.get_device_name(device) if device_type == "cuda" else f"cpu, {threads} thread(s)"
    return 2.0 * size**3 / best, f"measured {size}x{size} {name} matmul on {where}"


def peak_flops(device: torch.device | str) -> tuple[float, str]:
    """``(FLOP/s, how it was measured)`` of one device (see the module docstring); cached per process."""
    return _measured_peak(str(torch.device(device)), torch.get_num_threads())


def throughput_figures(
    model: torch.nn.Module,
    tokens_per_second: float,
    seq_len: int,
    device: torch.device | str,
    n_devices: int = 1,
    precision: str = "",
) -> dict:
    """Tokens/s, FLOPs per token, the peak of ``n_devices`` devices and the MFU, for metadata."""
    per_token = model_flops_per_token(model, seq_len)
    peak, basis = peak_flops(device)
    return {
        "tokens_per_second": round(float(tokens_per_second), 1),
        "flops_per_token": per_token,
        "peak_flops": peak * n_devices,
        "peak_basis": basis + (f" x {n_devices} devices" if n_devices > 1 else ""),
        "mfu": tokens_per_second * per_token / (peak * n_devices) if peak > 0 else 0.0,
        "precision": precision,
        "device": str(device),
    }
