"""Layer 2 reference: the math written once against the Array API standard.

Every kernel and bridge is tested against these functions. Code above layer 3
imports the public names from ``softgrad`` instead (or it loses the kernels).
"""
