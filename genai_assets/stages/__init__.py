"""One module per asset group, one entry function per asset: ``run_<asset>(config, lake, log) -> Result``.

The stage layer sits between the library packages (``sources`` … ``reporting``) and the Dagster layer
(``genai_assets.defs``): it holds each asset's orchestration (read the inputs from the lake, call the
library, write the outputs) and returns a small dataclass, so an asset body only gathers its config
and resources, calls the stage and turns the result into outputs and metadata. Nothing here imports
Dagster; ``lake`` is any object with the folder methods of ``defs._resources.DataLake``.
"""
