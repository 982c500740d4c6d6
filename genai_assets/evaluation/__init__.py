"""Evaluation of the trained poem models: metrics, perplexity, human A/B evaluation.

``metrics`` (BLEU/chrF, distinct-n, self-BLEU, memorisation, form) and ``human_eval`` are
light (no torch); ``perplexity`` and ``runner`` import torch/transformers and are only
imported from inside asset bodies.
"""
