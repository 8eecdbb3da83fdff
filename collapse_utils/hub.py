"""Reaching the Hugging Face Hub, or knowing at once that it cannot be reached.

The network chapters (VAE on MNIST, OPT-125m on wikitext-2) load real data and
weights from the Hub when they can and fall back to a labelled stand-in when they
cannot.  No code path may wait on the network: an offline variable decides
immediately, and otherwise one short socket probe does.
"""
from __future__ import annotations

import os
import socket

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_reason() -> str | None:
    """The variable that puts the Hub offline (e.g. ``HF_HUB_OFFLINE=1``), or None."""
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var}={os.environ[var]}"
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub (``$HF_ENDPOINT``, default huggingface.co) answers on port 443.

    Behind a proxy a direct probe proves nothing, so the answer is yes and the
    library's own request decides.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host.split(":")[0], 443), timeout=timeout).close()
        return True
    except OSError:
        return False
