"""Adapters to RunPod's APIs: the only home of httpx (transport in `http`)."""

import sys
import types

if "httpx" not in sys.modules:
    # httpx imports its command line (click, rich, pygments: ~35 ms) whenever those are
    # installed; podctl never runs it, and with this stand-in httpx defines a stub instead.
    # Here, so that it runs before any backend module imports httpx.
    sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))
