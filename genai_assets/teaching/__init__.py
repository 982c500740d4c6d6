"""Teaching material built from the live source: the narrated code walkthrough and the theory notes.

* :mod:`~genai_assets.teaching.script` — the narration (``narration.md``), parsed and checked
  against the code it points at (symbols resolved with ``ast``).
* :mod:`~genai_assets.teaching.voice` — offline speech (Piper), sentence-level cache, subtitles.
* :mod:`~genai_assets.teaching.slides` — code slides (Pygments) and the MP4 (ffmpeg).
* :mod:`~genai_assets.teaching.player` — the self-contained ``walkthrough.html``.
* :mod:`~genai_assets.teaching.cells` — RNN, LSTM and GRU cells written out by hand; BPTT probes.
* :mod:`~genai_assets.teaching.theory` — the theory report and its figures.

No Dagster here: ``genai_assets/defs/teaching.py`` wires these functions into assets.
"""
