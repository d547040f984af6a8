"""Layer 1: array namespace, dtype policy, argument checks and small shared helpers."""
