"""The ``gdlab`` command line: a thin layer over the engine, plots and web lab."""
