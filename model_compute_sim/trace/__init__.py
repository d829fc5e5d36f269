"""Trace side: PyTorch-profiler traces to per-operator FLOPs, GPU time and coverage."""
