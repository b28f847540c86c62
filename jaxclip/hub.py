"""Whether the Hugging Face hub can be asked now: offline switches and a short connection probe.

huggingface_hub retries a failed connection with back-off (about 25 s before it gives up), so
code that may run without a network asks `unavailable()` first and reads the local hub cache
alone when it says why the hub cannot be reached.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.request
from urllib.parse import urlparse

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
PROBE_TIMEOUT_S = 1.0


def offline() -> bool:
    """Whether the hub is switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now)."""
    flags = (os.environ.get(v, "").strip().lower() for v in OFFLINE_VARS)
    return any(f in ("1", "true", "yes", "on") for f in flags)


def endpoint() -> str:
    """The hub's URL: huggingface_hub's ENDPOINT (HF_ENDPOINT when it was imported)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """ "" if a TCP connection to `url`'s host (or to the HTTPS proxy that serves it) opens
    within `timeout` seconds, name lookup included; else why not, in a few words."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        p = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = p.hostname or "", p.port or 80
    result: list[str] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append("")
        except OSError as e:
            result.append(f"{host}:{port} unreachable: {type(e).__name__}: {e}")

    # A thread, because a name lookup (getaddrinfo) has no timeout of its own.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else f"{host}:{port} unreachable: no answer within {timeout:g} s"


def unavailable(timeout: float = PROBE_TIMEOUT_S) -> str:
    """ "" if the hub may be asked now, else why not ("HF_HUB_OFFLINE is set", or the probe's
    reason)."""
    from huggingface_hub import constants

    if offline() or constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    return unreachable(endpoint(), timeout)
