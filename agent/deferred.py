"""Deferred imports: keep modules the long-running agent never calls out of its memory.

paho-mqtt imports `hashlib` (OpenSSL's libcrypto), `urllib.request` (http.client, email, ...)
and `ssl` (libssl, libcrypto) at module level, although a plain mqtt:// client without a proxy
uses none of them; `dataclasses` imports `inspect` (ast, dis, ...) only to describe classes that
have no docstring. Together that is about 6 MB of the agent's RSS.

`import_deferring()` imports one module while the named modules are `Deferred` stand-ins: the
importer keeps a reference to the stand-in, which turns into the real module (imports it and
takes over its namespace) the first time any attribute is read. Nothing changes in behaviour:
whatever the importer does with the module still happens, on first use instead of at import.
The stand-ins are in `sys.modules` only during that one import, so every other `import` of those
names gets the real module.

A stand-in may carry placeholders, attributes served without importing anything. The only use:
paho names `ssl.SSLWantReadError` and `ssl.SSLWantWriteError` in `except` clauses of its socket
reads and writes, which run on every connection. On a plain TCP socket these exceptions cannot
occur, so classes nothing raises are exact substitutes until TLS is configured; paho's
`tls_set()` reads `ssl.SSLContext`, which brings in the real module (`load()` does it explicitly)
and replaces the placeholders. Blocking `ssl` instead (`sys.modules["ssl"] = None`) is not an
option: paho then evaluates `None.SSLWantReadError` on the first would-block read and its
network thread dies.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

# Stand-ins handed out so far, by module name (at most one each).
_STANDINS: dict[str, Deferred] = {}


class Deferred(types.ModuleType):
    """A module that imports the real one on first attribute access and becomes a copy of it.

    Deliberately no methods or properties of its own: every name belongs to the real module.
    """

    def __init__(self, name: str, placeholders: Mapping[str, object] | None = None) -> None:
        super().__init__(name)
        self.__dict__.update(placeholders or {})

    def __getattr__(self, attr: str) -> Any:
        # only reached for names the stand-in does not hold yet
        return getattr(_materialize(self), attr)


def _materialize(standin: Deferred) -> types.ModuleType:
    name = standin.__name__
    if sys.modules.get(name) is standin:  # still inside the deferring import
        del sys.modules[name]
    real = importlib.import_module(name)
    # from now on the same namespace as the real module: placeholders give way to real names
    for extra in standin.__dict__.keys() - real.__dict__.keys():
        del standin.__dict__[extra]
    standin.__dict__.update(real.__dict__)
    return real


def import_deferring(
    module: str,
    deferred: Iterable[str],
    placeholders: Mapping[str, Mapping[str, object]] | None = None,
) -> types.ModuleType:
    """Import `module` with each module in `deferred` that is not imported yet as a stand-in.

    Returns the imported module. A no-op (apart from returning it) when `module` is already
    imported: what it imported is then already in memory.
    """
    if module in sys.modules:
        return sys.modules[module]
    placeholders = placeholders or {}
    installed: dict[str, Deferred] = {}
    for name in deferred:
        if name in sys.modules:
            continue
        standin = _STANDINS.get(name) or Deferred(name, placeholders.get(name))
        _STANDINS.setdefault(name, standin)
        installed[name] = standin
        parent, _, child = name.rpartition(".")
        if parent:
            # `import a.b` binds `a` and the importer reads `a.b`: the package must carry it
            # (a real import of a.b later replaces it with the real module)
            setattr(importlib.import_module(parent), child, standin)
    sys.modules.update(installed)
    try:
        return importlib.import_module(module)
    finally:
        for name, standin in installed.items():
            if sys.modules.get(name) is standin:
                del sys.modules[name]


def load(name: str) -> None:
    """Turn the stand-in for `name`, if one was handed out, into the real module now."""
    standin = _STANDINS.get(name)
    if standin is not None:
        _materialize(standin)


def is_deferred(name: str) -> bool:
    """True while a stand-in for `name` exists and has not imported the real module yet."""
    standin = _STANDINS.get(name)
    return standin is not None and "__file__" not in standin.__dict__


class _NoTLSError(OSError):
    """Base of the ssl placeholders: raised by nothing, so `except` clauses naming them only
    ever see exceptions of real SSL sockets, which need the real module anyway."""


_SSL_PLACEHOLDERS: Mapping[str, object] = {
    "SSLWantReadError": type("SSLWantReadError", (_NoTLSError,), {}),
    "SSLWantWriteError": type("SSLWantWriteError", (_NoTLSError,), {}),
    "CertificateError": type("CertificateError", (ValueError,), {}),
}


def defer_for_values() -> None:
    """Before the first import of `dataclasses`: leave `inspect` out (every agent value class
    has a docstring, so dataclasses never calls inspect.signature)."""
    import_deferring("dataclasses", ("inspect",))


def defer_for_mqtt(tls: bool) -> None:
    """Before the first import of paho: leave out hashlib and urllib.request, and ssl too when
    the broker URL is plain mqtt:// (decided from the validated configuration)."""
    names: tuple[str, ...] = ("hashlib", "urllib.request")
    if not tls:
        names += ("ssl",)
    import_deferring("paho.mqtt.client", names, {"ssl": _SSL_PLACEHOLDERS})
