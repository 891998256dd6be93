"""Webhook sink: HTTP POST of the notification JSON, with a timeout and retries with backoff.

Transient failures (connection refused, timeouts, HTTP 5xx, 408, 429) are retried with
exponential backoff within one send; if all attempts fail the event stays queued and a later
pass tries again. Other 4xx answers are permanent: retrying the same body cannot help.
Environment proxies are ignored unless `use_env_proxy = true`: alerts go where they are sent.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from collector.alerts.model import Notification
from collector.sinks.common import check_keys, check_severity, get_int, get_num, get_str
from collector.sinks.interface import SinkError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "dunewatch-alerts/1"


@dataclass(frozen=True)
class WebhookSink:
    url: str
    name: str = "webhook"
    min_severity: str = "info"
    timeout: float = 5.0
    retries: int = 3  # extra attempts within one send
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 30.0
    max_attempts: int = 20  # over all passes, then the event is given up (recorded)
    headers: Mapping[str, str] = field(default_factory=dict)
    use_env_proxy: bool = False
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    type_name = "webhook"

    def __post_init__(self) -> None:
        where = f"sink {self.name}"
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkError(f"{where}: url must be http(s)://host/..., got {self.url!r}")
        check_severity(self.min_severity, where)
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_attempts < 1:
            raise SinkError(f"{where}: timeout > 0, retries >= 0, backoff >= 0, max_attempts >= 1")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], where: str) -> WebhookSink:
        check_keys(
            cfg,
            {
                "name",
                "url",
                "min_severity",
                "timeout",
                "retries",
                "backoff",
                "max_backoff",
                "max_attempts",
                "headers",
                "use_env_proxy",
            },
            where,
        )
        headers = cfg.get("headers", {})
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise SinkError(f"{where}: 'headers' must be a table of strings")
        use_env_proxy = cfg.get("use_env_proxy", False)
        if not isinstance(use_env_proxy, bool):
            raise SinkError(f"{where}: 'use_env_proxy' must be true or false")
        return cls(
            url=get_str(cfg, "url", where),
            name=get_str(cfg, "name", where, "webhook"),
            min_severity=get_str(cfg, "min_severity", where, "info"),
            timeout=get_num(cfg, "timeout", where, 5.0, 0.001),
            retries=get_int(cfg, "retries", where, 3, 0),
            backoff=get_num(cfg, "backoff", where, 0.5, 0.0),
            max_backoff=get_num(cfg, "max_backoff", where, 30.0, 0.0),
            max_attempts=get_int(cfg, "max_attempts", where, 20, 1),
            headers=dict(headers),
            use_env_proxy=use_env_proxy,
        )

    def _opener(self) -> urllib.request.OpenerDirector:
        if self.use_env_proxy:
            return urllib.request.build_opener()
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> None:
        """HTTP needs no standing connection."""

    def _post_once(self, opener: urllib.request.OpenerDirector, body: bytes) -> None:
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **self.headers,
            },
        )
        with opener.open(req, timeout=self.timeout) as resp:
            resp.read(65536)  # the answer is not used; do not let a receiver make us buffer much

    def send(self, notification: Notification) -> int:
        body = notification.to_json()
        opener = self._opener()
        delay = self.backoff
        last = ""
        for attempt in range(1, self.retries + 2):
            try:
                self._post_once(opener, body)
                return attempt
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason} from {self.url}"
                if exc.code not in RETRYABLE_STATUS:
                    raise SinkError(last, attempts=attempt, permanent=True) from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"POST {self.url} failed: {reason}"
            if attempt <= self.retries:
                self.sleep(min(delay, self.max_backoff))
                delay *= 2
        raise SinkError(last, attempts=self.retries + 1)

    def stop(self) -> None:
        """Nothing to close."""
