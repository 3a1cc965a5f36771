"""Secrets never reach a run file: API keys are replaced by ``[redacted]`` in everything a run writes.

Provider error messages can echo the key that was sent (``Incorrect API key provided: sk-...``), and a
model can be made to repeat one. Three sources of secrets are hidden: values given to
``register_secret`` (``resolve_lm`` registers the key it was passed), the values of the provider key
variables in ``regenesis.models.PROVIDER_KEYS`` that are set, and common key shapes.
"""

from __future__ import annotations

import os
import re
import threading

from regenesis import models

REDACTED = "[redacted]"
# Shorter values are placeholders, not secrets: local servers get the key "local", and hiding a short
# word would mangle every text that contains it.
MIN_SECRET_LENGTH = 8
KEY_SHAPES = re.compile(
    r"sk-[A-Za-z0-9_-]{16,}"            # OpenAI, Anthropic (sk-ant-...), DeepSeek, OpenRouter (sk-or-...)
    r"|gsk_[A-Za-z0-9]{16,}"            # Groq
    r"|xai-[A-Za-z0-9]{16,}"            # xAI
    r"|AIza[A-Za-z0-9_-]{30,}"          # Google / Gemini
    r"|hf_[A-Za-z0-9]{30,}"             # Hugging Face
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret to hide from every run file (short placeholders are ignored)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def _known_secrets() -> list[str]:
    from_env = (os.environ.get(variable) for variable in set(models.PROVIDER_KEYS.values()))
    values = {value for value in from_env if value and len(value) >= MIN_SECRET_LENGTH}
    with _lock:
        values |= _secrets
    return sorted(values, key=len, reverse=True)  # a key that contains another is hidden whole


def redact(text: str) -> str:
    """``text`` with every known secret and every string shaped like an API key replaced by ``[redacted]``."""
    for secret in _known_secrets():
        text = text.replace(secret, REDACTED)
    return KEY_SHAPES.sub(REDACTED, text)
