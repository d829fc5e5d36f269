"""model-compute-sim: per-operator FLOPs, bytes, roofline and MFU for LLM serving."""

__version__ = "0.1.0"
