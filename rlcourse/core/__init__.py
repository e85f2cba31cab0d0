"""Base utilities every other layer may use: errors, paths, strict JSON and atomic files, statistics, provenance,
and the torch-thread setting. Nothing here imports from another layer of :mod:`rlcourse`."""
