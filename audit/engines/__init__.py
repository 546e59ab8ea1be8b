"""Engines other than this machine's process pool for the dedup's heavy steps (see
:mod:`audit.dedup.engine`): :mod:`audit.engines.dask` (``scrape-audit run --engine dask``)."""
