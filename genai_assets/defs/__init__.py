"""Dagster wiring, one module per stage. Each module exposes ``defs = dg.Definitions(...)``
(assets, checks, schedules, stage-specific resources); ``genai_assets.definitions`` merges them
and binds the shared resources. Keep these modules thin: gather config and resources, call a
plain function from the library packages, write the result, return metadata."""
