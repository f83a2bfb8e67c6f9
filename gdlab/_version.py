"""The version of gdlab (read by the packaging metadata and written into saved states)."""

__version__ = "0.1.0"
