"""A pure-Python MQTT broker (amqtt) on loopback, for machines without mosquitto.

It exists so the zero-setup job works with nothing but Python installed. It speaks MQTT 3.1.1 only
and has no shared subscriptions, so it is never the recommended production broker: `start()` logs
a warning saying so. It reads the same mosquitto-format password file (`$7$` PBKDF2 hashes) and
applies the same rule as the generated mosquitto ACL: a device writes only under its own id.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.broker.mosquitto import BrokerError, check_loopback, free_port
from collector.broker.passwords import password_file_text, verify_password

log = logging.getLogger("dunewatch.broker.embedded")

MQTT_PROTOCOL = "3.1.1"
LIMITS_WARNING = (
    "using the embedded pure-Python MQTT broker (amqtt): MQTT 3.1.1 only, no shared "
    "subscriptions, about 3-4x slower than mosquitto; fine for a demo on this machine, "
    "install mosquitto (or give --broker URL) for real fleets"
)


def _import_amqtt() -> tuple[Any, Any, Any, Any]:
    try:
        from amqtt.broker import Broker
        from amqtt.contexts import Action
        from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BrokerError(
            "the embedded broker needs amqtt: python3 -m pip install 'dunewatch[server]'"
        ) from exc
    return Broker, Action, BaseAuthPlugin, BaseTopicPlugin


@dataclass(frozen=True)
class _Rules:
    """The mosquitto ACL the collector generates, as a predicate."""

    root: str
    readers: frozenset[str]

    def may_publish(self, user: str | None, topic: str) -> bool:
        if not user:
            return False
        prefix = f"{self.root}/v1/"
        if user in self.readers:
            return topic.startswith(prefix + "alerts/")
        return topic.startswith(f"{prefix}{user}/")

    def may_subscribe(self, user: str | None, topic_filter: str) -> bool:
        return bool(user) and user in self.readers and topic_filter.startswith(f"{self.root}/v1/")


class _PasswordFile:
    """mosquitto-format password file, re-read when it changes (enrolment adds lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._users: dict[str, str] = {}

    def check(self, user: str | None, password: str | None) -> bool:
        if not user or password is None:
            return False
        try:
            st = self.path.stat()
        except OSError:
            return False
        if (st.st_mtime, st.st_size) != self._stamp:
            users: dict[str, str] = {}
            for line in self.path.read_text().splitlines():
                name, sep, hashed = line.strip().partition(":")
                if sep and not name.startswith("#"):
                    users[name] = hashed
            self._users, self._stamp = users, (st.st_mtime, st.st_size)
        known = self._users.get(user)
        return known is not None and verify_password(password, known)


# Plugins are created by amqtt from dotted class paths; they find their settings here, keyed by
# the broker's password-file path (given in the plugin config), so several brokers can coexist.
_REGISTRY: dict[str, tuple[_PasswordFile, _Rules]] = {}


def _plugin_classes() -> tuple[type[Any], type[Any]]:
    _, action_cls, base_auth, base_topic = _import_amqtt()

    class PasswordAuth(base_auth):  # type: ignore[misc, valid-type]
        @dataclass
        class Config:
            password_file: str = ""

        async def authenticate(self, *, session: Any) -> bool:
            pw, _ = _REGISTRY[self.config.password_file]
            password = session.password
            if isinstance(password, bytes):
                password = password.decode("utf-8", "replace")
            return pw.check(session.username, password)

    class DeviceAcl(base_topic):  # type: ignore[misc, valid-type]
        @dataclass
        class Config:
            password_file: str = ""

        async def topic_filtering(
            self, *, session: Any = None, topic: str | None = None, action: Any = None
        ) -> bool:
            _, rules = _REGISTRY[self.config.password_file]
            user = session.username if session is not None else None
            if topic is None:
                return False
            if action == action_cls.PUBLISH:
                return rules.may_publish(user, topic)
            if action == action_cls.SUBSCRIBE:
                return rules.may_subscribe(user, topic)
            return True  # RECEIVE: subscriptions were already checked

    return PasswordAuth, DeviceAcl


_PLUGINS: tuple[type[Any], type[Any]] | None = None


def _plugins() -> tuple[type[Any], type[Any]]:
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = _plugin_classes()
        # amqtt loads plugins by dotted path: publish the classes under this module
        globals()["PasswordAuth"], globals()["DeviceAcl"] = _PLUGINS
    return _PLUGINS


@dataclass
class EmbeddedBroker:
    """amqtt in a background thread, bound to loopback; same users/ACL model as MosquittoBroker."""

    workdir: Path
    users: Mapping[str, str] = field(default_factory=dict)
    readers: tuple[str, ...] = ("collector",)
    root: str = "dunewatch"
    host: str = "127.0.0.1"
    port: int = 0
    protocol: str = field(default=MQTT_PROTOCOL, init=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _broker: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.host == "::1":  # amqtt is configured with an IPv4 "host:port" bind
            raise BrokerError("the embedded broker binds IPv4 loopback (127.0.0.0/8) only")
        check_loopback(self.host, "the embedded broker")
        self.workdir = Path(self.workdir)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def password_path(self) -> Path:
        return self.workdir / "passwd"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self.password_path.write_text(password_file_text(self.users))
        self.password_path.chmod(0o600)

    def _config(self) -> dict[str, Any]:
        key = str(self.password_path)
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                f"{__name__}.PasswordAuth": {"password_file": key},
                f"{__name__}.DeviceAcl": {"password_file": key},
            },
        }

    def start(self, timeout: float = 15.0) -> None:
        broker_cls, *_ = _import_amqtt()
        _plugins()
        self.write_config()
        _REGISTRY[str(self.password_path)] = (
            _PasswordFile(self.password_path),
            _Rules(self.root, frozenset(self.readers)),
        )
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        log.warning(LIMITS_WARNING)
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._broker = broker_cls(self._config())
                await self._broker.start()

            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            detail = f": {failure[0]}" if failure else ""
            self._thread = None
            raise BrokerError(f"embedded broker did not start on {self.host}:{self.port}{detail}")
        log.info("embedded MQTT broker listening on %s", self.url)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def reload(self) -> None:
        """Rewrite the password file; the auth plugin re-reads it on the next connect."""
        self.write_config()

    def add_users(self, users: Mapping[str, str]) -> None:
        merged = dict(self.users)
        merged.update(users)
        self.users = merged
        if self._thread is not None:
            self.reload()

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, broker = self._thread, self._loop, self._broker
        self._thread = None
        if thread is None or loop is None:
            return
        if broker is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
            try:
                fut.result(timeout)
            except Exception as exc:  # shutting down anyway; keep going
                log.warning("embedded broker shutdown: %s", exc)
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        _REGISTRY.pop(str(self.password_path), None)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
