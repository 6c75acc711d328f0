"""Reusable Gluon blocks: residual units, the attention module (and heads, fusion, CRU, ATAC)."""
