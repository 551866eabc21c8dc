"""Verifier backends: transformers (any device) and llama.cpp (CPU fast path)."""
