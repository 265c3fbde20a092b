"""podctl: a declarative reconciler for RunPod GPU pods and the batch jobs that run on them.

Kept import-light on purpose: `podctl --help` and `--version` import this module.
"""

__version__ = "0.1.0"
