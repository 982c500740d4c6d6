"""Stage "tokens", part 2: count-based word embeddings from the poem lines, compared with GloVe.

Asset ``cooccurrence_embeddings`` (group ``tokens``) writes ``<lake>/embeddings/`` (files listed
in :mod:`genai_assets.stages.tokens`, which does all the work)
and ``<lake>/reports/cooccurrence_vs_glove.png`` (the plot words, PCA 2-D, ours beside GloVe).
"""

import dagster as dg
import pandas as pd

from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._metadata import dataframe_markdown, image_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.defs._stage_call import run_stage
from genai_assets.text.cooccurrence import COOCCURRENCE_PRESETS, CooccurrenceConfig

CooccurrenceEmbeddingsConfig = stage_config(CooccurrenceConfig)


@dg.asset(
    group_name="tokens",
    kinds={"scipy", "scikit-learn"},
    config_schema=CooccurrenceEmbeddingsConfig.config_schema(),
)
def cooccurrence_embeddings(
    context: dg.AssetExecutionContext, lake: DataLake, cleansed_poems: pd.DataFrame
) -> dg.MaterializeResult:
    """Word co-occurrence counts over poem lines → PPMI → SVD vectors, plotted and compared with GloVe."""
    from genai_assets.stages.tokens import run_cooccurrence_embeddings

    run = run_stage(run_cooccurrence_embeddings, CooccurrenceEmbeddingsConfig, context, lake, cleansed_poems)
    meta, answered = run.meta, run.meta["analogies_answered"]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(run.folder)),
            "n_sentences": meta["n_sentences"],
            "n_tokens": meta["n_tokens"],
            "vocab_size": meta["vocab_size"],
            "counts_nnz": meta["counts_nnz"],
            "shared_vocab_with_glove": meta["shared_vocab_with_glove"],
            "mean_neighbour_overlap": meta["mean_neighbour_overlap"] or 0.0,
            "spearman_rho": float(meta["spearman_rho"]),
            "analogies": dataframe_markdown(run.analogies, max_rows=50),
            "analogies_correct": f"ours {meta['analogies_ours_correct']}/{answered}, "
            f"GloVe {meta['analogies_glove_correct']}/{answered}",
            "neighbours": dataframe_markdown(run.neighbours, max_rows=50, max_chars=200),
            "plot": image_markdown(run.plot_path)
            if run.plot_path
            else dg.MetadataValue.md("(fewer than two plot words are in both vocabularies)"),
            "analysis": dg.MetadataValue.md(meta["analysis"]),
            "missing_plot_words": dg.MetadataValue.json(run.missing_plot_words),
            "notes": dg.MetadataValue.json(meta["notes"]),
            "timings_s": dg.MetadataValue.json(meta["timings_s"]),
        }
    )


PRESETS = asset_presets({"cooccurrence_embeddings": COOCCURRENCE_PRESETS})

defs = dg.Definitions(assets=[cooccurrence_embeddings])
