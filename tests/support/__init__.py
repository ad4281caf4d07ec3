"""Helpers shared by the test suite and the benchmarks: external tools (Azurite, AzCopy) and paths."""
