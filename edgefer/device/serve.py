"""`edgefer-cam --serve`: the live view, served by the device process itself with the standard
library's threaded HTTP server (as picamera2's MJPEG streaming example does): nothing to install on
a Pi, and a phone's browser on the same network opens it.

  /             the page: the annotated video, and beside it each face's probabilities, a rolling
                30 s timeline per face, FPS, the per-stage latency table and what runs
  /stream.mjpg  the annotated video (MJPEG)
  /state.json   what the page shows, as JSON

Under load: the pipeline only hands over a reference to its newest frame. One encoder thread draws
and encodes a JPEG, and only while someone watches; every viewer is sent the newest JPEG and skips
those it was too slow for, so a slow or stalled viewer holds one JPEG and its own thread, never the
pipeline, and memory does not grow with viewers' delays. A viewer that takes nothing for 10 s is
dropped.

Security: any route but these three is 404, any method but GET and HEAD 405, and nothing on disk is
served. Beyond loopback every route needs the token (`?token=` or `Authorization: Bearer`); an empty
token is refused, never taken as "no token". A request whose Host header is a name other than a
loopback name, this machine's own names or one passed with --allow-host is refused (403): a web page
the user visits cannot read the camera through DNS rebinding, which needs a name of the attacker's.
At most MAX_CONNECTIONS connections are served at once; past that, 503 and the connection closed.
A connection has HEADER_SECONDS to send its request line and headers (nginx's client_header_timeout),
and when every slot is taken the connection that has been sending its headers longest is dropped to
make room: a client trickling headers a byte at a time (slowloris) cannot hold the slots that
viewers need. An HTTP/1.1 request without exactly one Host header is 400 (RFC 9112, 3.2).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import cv2

from ..core.errors import EdgeferError
from .pipeline import draw
from .timeline import COLORS, Timeline

PAGE = (Path(__file__).with_name("live.html")).read_bytes
BOUNDARY = b"edgefer-frame"
MAX_CONNECTIONS = 32  # viewers and page loads at once: each holds a thread
HEADER_SECONDS = 5.0  # a browser sends its request in milliseconds; a connection still sending after this is dropped
BUSY_TEXT = b"too many viewers: the live view serves a bounded number at once; try again shortly\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    b"Retry-After: 10\r\nContent-Length: " + str(len(BUSY_TEXT)).encode() + b"\r\n\r\n" + BUSY_TEXT
)


class ServeError(EdgeferError, ValueError):
    pass


class LiveView:
    """What the pipeline shows: its newest frame and faces, a rolling timeline per face, latency."""

    def __init__(self, about: dict, labels, latency, keep: float = 30.0, quality: int = 80):
        self.about, self.labels, self.latency, self.quality = about, list(labels), latency, quality
        self.timeline = Timeline(labels, keep=keep)
        self._cond = threading.Condition()
        self._pending = None  # (rgb, faces) of the newest frame, while someone watches
        self._jpeg, self._seq = None, 0
        self._faces, self._t, self._frames = [], 0.0, 0
        self.viewers, self.closed = 0, False
        self.encoded = 0
        threading.Thread(target=self._encode, name="edgefer-jpeg", daemon=True).start()

    def publish(self, frame, faces):
        """Called by the pipeline for every frame: cheap, never waits for a viewer."""
        with self._cond:
            self.timeline.add(frame.t, faces)
            self._faces, self._t, self._frames = faces, frame.t, self._frames + 1
            if self.viewers:
                self._pending = (frame.rgb, faces)
                self._cond.notify_all()

    def _encode(self):
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self.closed)
                if self.closed:
                    return
                rgb, faces = self._pending
                self._pending = None
            ok, jpeg = cv2.imencode(".jpg", draw(rgb, faces), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            with self._cond:
                self._jpeg, self._seq = jpeg.tobytes(), self._seq + 1
                self.encoded += 1
                self._cond.notify_all()

    def next_jpeg(self, seen: int, timeout: float = 1.0):
        """(sequence number, JPEG) newer than `seen`, or (seen, None) after `timeout` or at close."""
        with self._cond:
            if self._cond.wait_for(lambda: self._seq != seen or self.closed, timeout) and not self.closed:
                return self._seq, self._jpeg
            return seen, None

    def watch(self, delta: int):
        with self._cond:
            self.viewers += delta

    def state(self) -> dict:
        with self._cond:
            state = {
                "t": round(self._t, 2),
                "frames": self._frames,
                "viewers": self.viewers,
                "faces": [f.to_dict() for f in self._faces],
                "timeline": self.timeline.to_json(),
            }
        state.update(
            about=self.about,
            labels=self.labels,
            colors=COLORS[: len(self.labels)],
            keep=self.timeline.keep,
            latency=self.latency.summary(),
        )
        return state

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def parse_address(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` -> (host, port); a bare port binds to loopback."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ServeError(f"--serve {text!r}: expected PORT or HOST:PORT, e.g. 8000 or 0.0.0.0:8000") from None
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`, `pi.local:8000` -> `pi.local`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def allowed_host(name: str, names: set[str]) -> bool:
    """An IP address (DNS rebinding needs a name), a loopback name, or one of `names`."""
    if not name:
        return True  # HTTP/1.0 without a Host header: no name to rebind
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in names or name == "localhost" or name.endswith(".localhost")


def own_names() -> set[str]:
    """This machine's names, as a browser on the network would reach it."""
    names = {socket.gethostname().lower(), socket.gethostname().lower() + ".local"}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return names


class ViewServer:
    """The HTTP server in its own threads; `close()` stops it and wakes every viewer."""

    def __init__(
        self, view: LiveView, address: str, token: str | None, allow_hosts=(), max_connections: int = MAX_CONNECTIONS
    ):
        host, port = parse_address(address)
        if token == "":
            raise ServeError(
                "the live view's token is empty, which would let anyone in: give a token "
                "(--token or $EDGEFER_TOKEN), leave it unset for a new one, or pass --no-auth"
            )
        names = own_names() | {h.lower() for h in allow_hosts} | {host.lower()}
        server_class = _Server6 if ":" in host else _Server
        try:
            self.httpd = server_class((host, port), _handler(view, token, names))
        except OSError as exc:
            raise ServeError(
                f"--serve {address}: cannot listen there ({exc.strerror}); "
                "choose another port, or a host address of this machine"
            ) from None
        self.httpd.slots = threading.BoundedSemaphore(max_connections)
        self.view, self.token, self.host = view, token, host
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="edgefer-http", daemon=True).start()

    def urls(self) -> list[str]:
        """Where to open the page: loopback as bound; a wildcard bind also by hostname and LAN address."""
        query = f"/?token={quote(self.token, safe='')}" if self.token else "/"  # '+', '&', 'é' survive the URL
        hosts = [self.host]
        if self.host in ("0.0.0.0", "::", ""):
            hosts = [h for h in (_lan_address(), socket.gethostname() + ".local") if h]
        return [f"http://{'[' + h + ']' if ':' in h else h}:{self.port}{query}" for h in hosts]

    def close(self):
        self.view.close()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer's thread never keeps the process alive
    allow_reuse_address = True  # a service restarted at once can bind again
    request_queue_size = 64  # a burst of connections waits to be answered (or refused) rather than retrying
    slots: threading.BoundedSemaphore

    def server_activate(self):
        super().server_activate()
        self.reading: dict = {}  # connection -> when it began, for those still sending their headers
        self.reading_lock = threading.Lock()

    def drop_slowest_reader(self) -> bool:
        """Drop the connection that has been sending its headers longest; False if none is."""
        with self.reading_lock:
            if not self.reading:
                return False
            oldest = min(self.reading, key=self.reading.get)
            del self.reading[oldest]
        try:
            oldest.shutdown(socket.SHUT_RDWR)  # its handler's read returns, and its thread ends
        except OSError:
            pass
        return True

    def process_request(self, request, client_address):
        # a connection past the bound gets its 503 from the accepting thread and no thread of its own,
        # unless a connection still sending headers can be dropped to make room
        if not self.slots.acquire(blocking=False) and not (
            self.drop_slowest_reader() and self.slots.acquire(timeout=2.0)
        ):
            try:
                request.settimeout(1.0)
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Server6(_Server):
    address_family = socket.AF_INET6


def _lan_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None offline."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return None


def new_token() -> str:
    return secrets.token_urlsafe(12)


def _handler(view: LiveView, token: str | None, names: set[str]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgefer"
        timeout = 10  # seconds a viewer may take nothing before it is dropped

        def log_message(self, *args):  # a request log line per MJPEG frame would drown the report
            pass

        def setup(self):
            super().setup()
            with self.server.reading_lock:
                self.server.reading[self.connection] = time.monotonic()
            self._deadline = threading.Timer(HEADER_SECONDS, self._headers_too_slow)
            self._deadline.daemon = True
            self._deadline.start()

        def _headers_too_slow(self):
            with self.server.reading_lock:
                still = self.server.reading.pop(self.connection, None) is not None
            if still:
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def _headers_done(self):
            self._deadline.cancel()
            with self.server.reading_lock:
                self.server.reading.pop(self.connection, None)

        def parse_request(self):
            ok = super().parse_request()  # the request line and the headers are in
            self._headers_done()
            return ok

        def finish(self):
            self._headers_done()
            super().finish()

        def do_GET(self):
            self._route(body=True)

        def do_HEAD(self):
            self._route(body=False)

        def _not_allowed(self):
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self._text(b"method not allowed: the live view only answers GET and HEAD\n")

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

        def _route(self, body: bool):
            url = urlsplit(self.path)
            hosts = self.headers.get_all("Host") or []
            if len(hosts) > 1 or (not hosts and self.request_version >= "HTTP/1.1"):
                self.send_response(400)
                return self._text(b"bad request: an HTTP/1.1 request carries exactly one Host header\n")
            if not allowed_host(host_name(self.headers.get("Host", "")), names):
                self.send_response(403)
                return self._text(
                    b"host not allowed: open the live view by this machine's address or name, "
                    b"or start edgefer-cam with --allow-host NAME\n"
                )
            if token is not None and not self._authorised(url.query):
                self.send_response(401)
                return self._text(b"token missing or wrong: open the URL edgefer-cam printed, with its ?token=\n")
            if url.path == "/":
                return self._send(PAGE(), "text/html; charset=utf-8", body)
            if url.path == "/state.json":
                return self._send(json.dumps(view.state()).encode(), "application/json", body)
            if url.path == "/stream.mjpg":
                return self._stream(body)
            self.send_response(404)
            self._text(b"not found: the live view serves /, /stream.mjpg and /state.json\n")

        def _authorised(self, query: str) -> bool:
            given = parse_qs(query).get("token", [""])[0].encode()  # the query percent-decoded as UTF-8
            scheme, _, credentials = self.headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() == "bearer":  # schemes are case-insensitive (RFC 9110, 11.1)
                given = credentials.strip().encode("latin-1", "replace")  # header bytes, as sent
            return hmac.compare_digest(given, token.encode())

        def _headers(self, content_type: str, length: int | None = None):
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")  # the token is in the URL
            self.send_header(
                "Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
            )
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def _text(self, message: bytes):
            self._headers("text/plain; charset=utf-8", len(message))
            self.wfile.write(message)

        def _send(self, data: bytes, content_type: str, body: bool):
            self.send_response(200)
            self._headers(content_type, len(data))
            if body:
                self.wfile.write(data)

        def _stream(self, body: bool):
            self.send_response(200)
            self._headers(f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
            if not body:
                return
            view.watch(+1)
            seen = 0
            try:
                while not view.closed:
                    seen, jpeg = view.next_jpeg(seen)
                    if jpeg is None:
                        continue
                    self.wfile.write(
                        b"--"
                        + BOUNDARY
                        + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpeg)).encode()
                        + b"\r\n\r\n"
                        + jpeg
                        + b"\r\n"
                    )
            except (OSError, ValueError):  # the viewer left, or stalled past the timeout
                pass
            finally:
                view.watch(-1)

    return Handler
