"""Pure domain logic. Nothing here imports Textual, Rich or click."""
