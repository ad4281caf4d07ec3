"""Storage backends: local files, Azure Files, Azure Blob, and an in-memory reference.

Each implements the :class:`~shareferry.core.backends.base.Backend` protocol; the engine asks
for optional abilities through :class:`~shareferry.core.backends.base.Capabilities` and never
branches on which backend it holds.
"""
