"""Text processing for the poems: tokenizers, token arrays, PyTorch datasets, co-occurrence embeddings.

Kept light at import: the heavy libraries (torch, tokenizers, transformers, scikit-learn) are
imported by the submodules that need them, and the ``genai_assets.defs`` modules import those
submodules inside asset bodies only.
"""
