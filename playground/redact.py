"""What counts as a secret, and how secrets are kept out of what the playground writes.

Two rules, one for each way a key could get in:

* **Keys in the environment are scrubbed.** The value of every environment variable
  whose name looks like a credential (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``,
  ``*PASSWORD*``, ...), and of every variable a loaded system names in an ``*_env``
  setting (``api_key_env: LLM_CRED``: whatever its name), is replaced by
  ``[redacted]`` in everything the store writes, every span exported, and what the
  command line prints: a model or a tool may echo a key it was given.
  Values shorter than :data:`MIN_SECRET_CHARS` are not scrubbed (too many false hits).

* **Keys in a system file are refused.** A setting whose name is a credential's
  (any spelling of the family: ``api_key``, ``X-Api-Key``, ``x-goog-api-key``,
  ``Ocp-Apim-Subscription-Key``, ``access_key``, ``private_key``, ``Authorization``,
  ``password``, ``token``, ...), a URL with a user or password in it
  (``https://user:key@host``) or with such a query parameter, and an
  ``Authorization``-style value (``Bearer ...``) are refused when the file loads,
  with its file and line: put the key in the environment and name the variable
  with ``api_key_env``.

This module imports nothing of the playground: the spec, the store, the tracer and
the command line all use it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8
"""Shorter values are not treated as secrets: scrubbing them would mangle ordinary text."""

_SECRET_ENV = re.compile(
    r"(API_?KEY|_KEY$|^KEY$|_KEY_|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_AUTH$|^AUTH_|_PAT$)", re.IGNORECASE
)
"""Environment variable names that hold credentials by convention."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_SECRET_WORDS = frozenset(
    {
        "secret",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "token",
        "credential",
        "credentials",
        "authorization",
        "auth",
        "cookie",
        "signature",
        "bearer",
    }
)
"""Words that make a setting's name a credential's (``tokens``, a count, is not one)."""
_NOT_SECRET_SETTINGS = frozenset({"prompt_cache_key", "cache_key", "idempotency_key"})
"""Settings whose names end in ``key`` but that hold no credential."""
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_AUTH_VALUE = re.compile(r"^\s*(bearer|basic|token|digest)\s+\S{8,}", re.IGNORECASE)

_lock = threading.Lock()
_declared: set[str] = set()
"""Environment variables named by a loaded system's ``*_env`` settings."""
_current: tuple[tuple[str, str], ...] = ()
"""(value as written, variable name) pairs, longest first, with each value's JSON-escaped
forms: what :func:`scrub` replaces."""
_pattern: re.Pattern[str] | None = None
_stale = True


def is_env_setting(key: str) -> bool:
    """Whether a setting names an environment variable (``api_key_env``) rather than holding a value."""
    return key.lower().endswith("_env")


def secret_setting(key: str) -> bool:
    """Whether a setting (or header) of this name would hold a credential.

    The name is split into words (``X-Api-Key`` -> x, api, key; ``apiKey`` -> api, key);
    it is a credential's when a word is one of :data:`_SECRET_WORDS`, or is or ends in
    ``key`` (``key``, ``apikey``, ``subscriptionkey``). ``*_env`` settings name a
    variable and are not secrets themselves.
    """
    if is_env_setting(key) or key.lower() in _NOT_SECRET_SETTINGS:
        return False
    words = [w.lower() for w in _WORD.findall(key)]
    joined = "".join(words)
    if joined.endswith("apikey") or joined.endswith("accesskey") or joined.endswith("privatekey"):
        return True
    return any(w in _SECRET_WORDS or w.endswith("key") for w in words)


def secret_in_value(value: str) -> str | None:
    """Why a setting's value carries a credential (a URL with a user or password, a key in
    its query, an ``Authorization``-style value), or None."""
    if _AUTH_VALUE.match(value):
        return "an Authorization value"
    if "://" in value:
        try:
            parts = urlsplit(value.strip())
            userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
            query = parse_qsl(parts.query, keep_blank_values=True)
        except ValueError:
            return None
        if userinfo:
            return "a URL with a user or password in it (user:key@host)"
        for name, _ in query:
            if secret_setting(name):
                return f"a URL with a credential in its query ({name}=...)"
    return None


def check_env_name(name: Any) -> str | None:
    """Why ``name`` cannot be an environment variable's name (a key pasted in its place), or None."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        return "names an environment variable (letters, digits and _), not a value"
    return None


def declare_env(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on."""
    global _stale
    with _lock:
        if name not in _declared:
            _declared.add(name)
            _stale = True


def refresh() -> None:
    """Read the environment again at the next :func:`current` (call after it changed)."""
    global _stale
    _stale = True


def is_secret_env(name: str) -> bool:
    """Whether the variable ``name`` holds a secret: by its name, or declared by a system."""
    return name in _declared or bool(_SECRET_ENV.search(name))


def current() -> tuple[tuple[str, str], ...]:
    """The secrets to scrub, as ``(text, variable)`` pairs, longest text first.

    Read from the environment when something changed (:func:`declare_env`,
    :func:`refresh`); otherwise a cached tuple, cheap enough to ask per span.
    """
    global _current, _pattern, _stale
    if _stale:
        with _lock:
            found: dict[str, str] = {}
            for name, value in os.environ.items():
                if len(value) >= MIN_SECRET_CHARS and is_secret_env(name):
                    for form in _forms(value):
                        found.setdefault(form, name)
            _current = tuple(sorted(found.items(), key=lambda item: len(item[0]), reverse=True))
            # One pass over a text finds any of them (measured: 0.4 µs for a span's attributes
            # with three secrets, against 3 µs for a loop of `in` tests).
            _pattern = re.compile("|".join(re.escape(text) for text, _ in _current)) if _current else None
            _stale = False
    return _current


def _matcher() -> re.Pattern[str] | None:
    current()
    return _pattern


def _forms(value: str) -> list[str]:
    """The value, and how it reads inside JSON text (escaped, with and without ASCII escapes)."""
    forms = [value]
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        if escaped not in forms:
            forms.append(escaped)
    return forms


def scrub(text: str, secrets: Iterable[tuple[str, str]] | None = None, *, replacement: str = REDACTED) -> str:
    """``text`` with every secret replaced by ``[redacted]`` (or ``replacement``: Rich markup
    needs ``\\[redacted]``). ``secrets`` defaults to :func:`current`."""
    if secrets is not None:
        for secret, _ in secrets:
            if secret in text:
                text = text.replace(secret, replacement)
        return text
    pattern = _matcher()
    if pattern is None or pattern.search(text) is None:
        return text
    return pattern.sub(lambda _: replacement, text)


def find(text: str) -> str | None:
    """The name of the variable whose secret value ``text`` contains, or None."""
    pattern = _matcher()
    found = pattern.search(text) if pattern is not None else None
    if found is None:
        return None
    return dict(_current)[found.group(0)]


def scrub_value(value: Any) -> Any:
    """A JSON-like value with every secret in its strings (keys too) replaced."""
    if not current():
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_value(k): scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(v) for v in value)
    return value


def scrub_attributes(attributes: MutableMapping[str, Any]) -> None:
    """Replace secrets in the string values (and strings in sequence values) of a mapping, in place.

    For span and span-event attributes: the tracer calls it on each span as it ends.
    """
    pattern = _matcher()
    if pattern is None:
        return
    search = pattern.search
    for key, value in attributes.items():
        if type(value) is str:
            if search(value) is not None:
                attributes[key] = scrub(value)
        elif isinstance(value, tuple | list) and any(type(v) is str and search(v) for v in value):
            attributes[key] = tuple(scrub(v) if isinstance(v, str) else v for v in value)
