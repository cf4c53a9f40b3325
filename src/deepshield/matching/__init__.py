"""Matching: perceptual and exact hashes (signal types), hash banks and the exact in-memory index."""
