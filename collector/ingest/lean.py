"""A lean MQTT 3.1.1 subscriber on the standard library: just what QoS 1 ingest needs.

paho-mqtt spends most of its time per message in generic machinery (a select() per packet,
callbacks, properties, locks); one paho process tops out near 13,500 messages/s parse-only on
this machine kind. This reader does CONNECT (persistent session), SUBSCRIBE, reads PUBLISH
packets straight out of a large receive buffer and sends PUBACKs in one write per batch, after
the batch is committed. Batching, validation, storage and ack rules are shared with the paho
consumer (collector/ingest/mqtt.py); only the network layer differs. MQTT 3.1.1 only.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time

from collector.ingest.interface import IngestError
from collector.ingest.mqtt import Consumer

log = logging.getLogger("dunewatch.ingest")

_CONNACK_ERRORS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


# a read smaller than this is a trickle, after which the reader pauses (read_pause_ms); a
# backlog fills the receive buffer, and then the next read follows at once
SMALL_READ = 65536


class MqttProtocolError(IngestError):
    """The broker sent something this reader does not accept, or refused us."""


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    n = len(body)
    out = bytearray([first])
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            break
    return bytes(out) + body


class LeanConsumer(Consumer):
    """Consumer whose network layer is a plain socket speaking MQTT 3.1.1."""

    @property
    def read_pause(self) -> float:  # type: ignore[override]
        return self.ingest.read_pause

    def _start_network(self) -> None:
        self._sock: socket.socket | ssl.SSLSocket | None = None
        self._wlock = threading.Lock()
        self._last_send = time.monotonic()
        self._reader = threading.Thread(
            target=self._run, name=f"ingest-lean-{self.slot}", daemon=True
        )
        self._reader.start()

    def _stop_network(self) -> None:
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                self._write(b"\xe0\x00")  # DISCONNECT: the session stays on the broker
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout=10)

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise OSError("not connected")
        with self._wlock:
            sock.sendall(data)
            self._last_send = time.monotonic()

    def _send_acks(self, mids: list[int]) -> None:
        data = b"".join(b"\x40\x02" + struct.pack("!H", mid) for mid in mids)
        try:
            self._write(data)
        except OSError as exc:  # the broker re-sends them after we reconnect
            log.warning("ingest %s: acks not sent (%s)", self.client_id, exc)

    # -- connection ----------------------------------------------------------------------------

    def _connect(self) -> socket.socket | ssl.SSLSocket:
        b = self.broker
        raw = socket.create_connection((b.host, b.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket | ssl.SSLSocket = raw
        if b.tls:
            ctx = ssl.create_default_context(cafile=b.ca_file)
            if b.cert_file:
                ctx.load_cert_chain(b.cert_file, b.key_file)
            sock = ctx.wrap_socket(raw, server_hostname=b.host)
        flags = 0  # clean session 0: the broker keeps our session and queues while we are away
        payload = _str(self.client_id)
        if b.username:
            flags |= 0x80
            payload += _str(b.username)
            if b.password is not None:
                flags |= 0x40
                payload += _str(b.password)
        var = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", b.keepalive)
        sock.sendall(_packet(0x10, var + payload))
        head = _recv_exact(sock, 4)
        if head[0] != 0x20 or head[1] != 2:
            raise MqttProtocolError(f"expected CONNACK, got packet type {head[0] >> 4}")
        if head[3] != 0:
            why = _CONNACK_ERRORS.get(head[3], f"code {head[3]}")
            raise MqttProtocolError(f"broker refused connection: {why}")
        sub = struct.pack("!H", 1) + _str(self.topic) + b"\x01"
        sock.sendall(_packet(0x82, sub))
        sock.settimeout(1.0)
        return sock

    def _run(self) -> None:
        delay = 1.0
        while not self._stopping:
            try:
                self._sock = self._connect()
            except (OSError, MqttProtocolError) as exc:
                self.last_error = str(exc)
                log.error(
                    "ingest %s: cannot connect to %s: %s", self.client_id, self.broker.url, exc
                )
                self._stop_wait.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 1.0
            self._connected()
            log.info(
                "mqtt ingest %s (lean): connected to %s, subscribed to %s",
                self.client_id,
                self.broker.url,
                self.topic,
            )
            try:
                self._read_loop(self._sock)
            except (OSError, MqttProtocolError) as exc:
                if not self._stopping:
                    self.last_error = str(exc)
                    log.warning(
                        "ingest %s: connection lost (%s); reconnecting", self.client_id, exc
                    )
            finally:
                self.counters.set(self.slot, "connected", 0)
                with contextlib.suppress(OSError):
                    self._sock.close()

    def _oversized(self, buf: bytearray, i: int, end: int, first: int, length: int) -> bool | None:
        """Reject a PUBLISH too large to hold, from its variable header alone; None if that
        header has not arrived yet. The packet is still acknowledged after the next commit."""
        qos = (first >> 1) & 3
        if i + 2 > end:
            return None
        tlen = (buf[i] << 8) | buf[i + 1]
        need = i + 2 + tlen + (2 if qos else 0)
        if need > end:
            return None
        topic = bytes(buf[i + 2 : i + 2 + tlen]).decode(errors="replace")
        mid = (buf[need - 2] << 8) | buf[need - 1] if qos else 0
        detail = f"packet of {length} bytes exceeds limit {self.ingest.max_payload}"
        self.deliver_reject(topic, "oversized", detail, length, mid, qos)
        return True

    def _read_loop(self, sock: socket.socket | ssl.SSLSocket) -> None:
        buf = bytearray()
        keepalive = float(self.broker.keepalive)
        last_recv = time.monotonic()
        deliver = self.deliver_many
        # a PUBLISH longer than this can only be rejected: it is never held in memory whole
        max_packet = self.ingest.max_payload + 2 + 65535 + 2
        skip = 0  # bytes of an oversized packet still to discard
        # one receive buffer for the connection: recv(256 KiB) would allocate (and map) a fresh
        # 256 KiB object per call, which dominates when a live stream brings a message at a time
        rbuf = bytearray(262144)
        rview = memoryview(rbuf)
        pause = self.read_pause
        while not self._stopping:
            got: int | None
            try:
                got = sock.recv_into(rbuf)
            except TimeoutError:
                got = None
            now = time.monotonic()
            if got is not None:
                if not got:
                    raise MqttProtocolError("broker closed the connection")
                buf += rview[:got]
                last_recv = now
            elif now - last_recv > 1.5 * keepalive:
                raise MqttProtocolError("no traffic from the broker within 1.5 keepalives")
            if now - self._last_send > keepalive / 2:
                self._write(b"\xc0\x00")  # PINGREQ
            if skip:
                n = min(skip, len(buf))
                del buf[:n]
                skip -= n
                if skip:
                    continue
            pos, end = 0, len(buf)
            received: list[tuple[str, bytes, int, int]] = []  # handed over once per read
            while pos + 2 <= end:
                first = buf[pos]
                # remaining length: 1-4 bytes, 7 bits each
                mult, length, i = 1, 0, pos + 1
                while True:
                    if i >= end:
                        length = -1
                        break
                    byte = buf[i]
                    length += (byte & 0x7F) * mult
                    i += 1
                    if not byte & 0x80:
                        break
                    mult *= 128
                    if mult > 128**3:
                        raise MqttProtocolError("malformed remaining length")
                ptype = first >> 4
                if ptype == 3 and length > max_packet:
                    if received:  # keep arrival order
                        deliver(received)
                        received = []
                    head = self._oversized(buf, i, end, first, length)
                    if head is None:
                        break  # its topic and packet id are not here yet
                    pos = min(i + length, end)
                    skip = i + length - pos
                    if skip:
                        break
                    continue
                if length < 0 or i + length > end:
                    break  # incomplete packet: wait for more bytes
                if ptype == 3:  # PUBLISH
                    qos = (first >> 1) & 3
                    tlen = (buf[i] << 8) | buf[i + 1]
                    t_end = i + 2 + tlen
                    try:
                        topic = buf[i + 2 : t_end].decode()
                    except UnicodeDecodeError:
                        topic = repr(bytes(buf[i + 2 : t_end]))[:200]
                    if qos:
                        mid = (buf[t_end] << 8) | buf[t_end + 1]
                        p_start = t_end + 2
                    else:
                        mid, p_start = 0, t_end
                    received.append((topic, bytes(buf[p_start : i + length]), mid, qos))
                elif ptype == 9:  # SUBACK
                    if buf[i + length - 1] == 0x80:
                        raise MqttProtocolError(f"broker refused subscription {self.topic}")
                elif ptype not in (13,):  # PINGRESP; anything else is unexpected here
                    log.debug("ingest %s: ignoring packet type %d", self.client_id, ptype)
                pos = i + length
            if received:
                deliver(received)
            if pos:
                del buf[:pos]
            if pause and got is not None and got < SMALL_READ:
                # a trickle (a live stream, not a backlog): let a few tens of messages gather
                # rather than wake, read and hand over one message at a time
                self._stop_wait.wait(pause)


def _recv_exact(sock: socket.socket | ssl.SSLSocket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise MqttProtocolError("broker closed the connection during CONNECT")
        data += chunk
    return data
