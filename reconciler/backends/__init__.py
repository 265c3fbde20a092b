"""Adapters to RunPod's APIs: the only home of httpx."""
