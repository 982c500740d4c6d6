"""Fine-tuning a pre-trained causal language model on the poems (issue #5).

Modules, each importable without side effects (torch/transformers are imported inside functions):

- ``base_model``   resolve the ``base_model`` config (packaged SmolLM2, Hub id, local folder,
                   ``tiny-gpt2-random``) to a Hugging Face folder, and record what was used.
- ``gguf_convert`` dequantize a GGUF file into a ``save_pretrained`` folder (once, cached).
- ``data``         poem → text with markers → token ids; packing and per-poem padding collation.
- ``metrics``      the LM loss on collated batches, held-out perplexity, the training-stats table.
- ``train``        the fine-tuning run on the shared loop (``genai_assets.training.loop``), LoRA,
                   held-out perplexity, the saved model folder with card and metrics.
"""
