"""codeswift: lossless retrieval-speculative code completion."""

__version__ = "0.1.0"
