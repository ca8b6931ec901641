"""Addresses as they may be shown: a database URL or DSN, a camera's stream URL, with any
password masked (logs, health answers, stream status, error messages)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (URL netloc, ``password=`` parameters)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
        url = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return re.sub(r"(password\s*=\s*)('[^']*'|[^\s&;]*)", r"\1***", url, flags=re.IGNORECASE)


__all__ = ["mask_password"]
