"""Application layer: whole workflows composed from core (the demo builder, pipelines).

The CLI and the TUI call into here; nothing here imports either of them.
"""
