"""podctl: a declarative reconciler for RunPod GPU pods and the batch jobs that run on them.

Kept import-light on purpose: `podctl --help` and `--version` import this module.
"""

import warnings

__version__ = "0.1.0"

# asyncssh (2.24) touches cryptography's DSA classes at import, and cryptography 51 warns about
# that on every run; podctl never offers DSA keys, so users must not see it on every command.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")
