"""`edgefer-phone`: serves the phone page, which runs BlazeFace and the phone form of an edgefer model
in the phone's own browser, on its own camera, with MediaPipe Tasks for the web. The faces never
leave the phone: this server hands over only the page, MediaPipe's web files and the two models.

  /                     the page (phone.html, phone.js)
  /about.json           the model's name, its card and the device's smoothing and detection settings
  /model.tflite         the phone form (edgefer-export --mobile), /face.tflite the bundled BlazeFace
  /tasks-vision/...     MediaPipe's bundle and WebAssembly, from `npm ci --prefix web` (no CDN)

A browser gives a page the camera only on a secure origin: http://localhost on the same machine, or
https from another one. `--cert FILE --key FILE` serve https (a self-signed certificate does, once the
phone has accepted it; docs/mobile.md). Binds to loopback unless told otherwise; any other route is
404, any method but GET and HEAD 405, a Host header naming a machine other than this one 403 (as
edgefer-cam --serve does, against DNS rebinding).
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from ..core import card as card_mod
from ..core.errors import EdgeferError
from ..core.faces import FACE_MODELS, MIN_SCORE
from ..core.files import CommandParser, OneDefault
from ..models import BUNDLED, DEFAULT, HERE
from .serve import allowed_host, host_name, own_names, parse_address
from .tracker import MAX_MISSED, MIN_IOU, SMOOTHING

HERE_DEVICE = Path(__file__).parent
# where `npm ci --prefix web` puts MediaPipe's web files in a clone
WEB_FILES = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "@mediapipe" / "tasks-vision"
SERVED = {  # the page's route -> (file under the tasks-vision package, content type)
    "/tasks-vision/vision_bundle.mjs": ("vision_bundle.mjs", "text/javascript"),
    **{
        f"/tasks-vision/wasm/{name}{ext}": (f"wasm/{name}{ext}", kind)
        for name in ("vision_wasm_internal", "vision_wasm_nosimd_internal")
        for ext, kind in ((".js", "text/javascript"), (".wasm", "application/wasm"))
    },
}
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; worker-src 'self' blob:; connect-src 'self'"
)


class PhoneError(EdgeferError, ValueError):
    pass


def phone_model(name: str) -> tuple[Path, dict]:
    """(path, card) of a bundled model's phone form by name, or of a phone-form .tflite; PhoneError otherwise."""
    path = HERE / "mobile" / BUNDLED[name] if name in BUNDLED else Path(name)
    if not path.is_file():
        raise PhoneError(f"{name}: no such model file; pass a phone-form .tflite or one of {', '.join(BUNDLED)}")
    card = card_mod.read_embedded(path)
    if (card.get("quantization") or {}).get("profile") != "mobile":
        raise PhoneError(
            f"{path}: not the phone form (its input is {card['input']['color']} int8); "
            f"write it with edgefer-export {path} --mobile --out phone.tflite"
        )
    return path, card


def web_files(folder) -> Path:
    folder = Path(folder)
    missing = [f for f, _ in SERVED.values() if not (folder / f).is_file()]
    if missing:
        raise PhoneError(
            f"{folder}: MediaPipe's web files are not there ({missing[0]} missing); in the clone run "
            "npm ci --prefix web (it installs @mediapipe/tasks-vision, pinned), or pass --web-files DIR"
        )
    return folder


class PhoneServer:
    """The page's server in its own threads; `close()` stops it."""

    def __init__(self, model, address: str = "8000", web=WEB_FILES, cert=None, key=None, allow_hosts=()):
        model, card = phone_model(str(model))
        host, port = parse_address(address)
        about = {
            "model": model.name,
            "card": card,
            "device": {"smoothing": SMOOTHING, "min_iou": MIN_IOU, "max_missed": MAX_MISSED, "min_score": MIN_SCORE},
        }
        folder = web_files(web)
        files = {
            "/": ((HERE_DEVICE / "phone.html").read_bytes(), "text/html; charset=utf-8"),
            "/phone.js": ((HERE_DEVICE / "phone.js").read_bytes(), "text/javascript"),
            "/about.json": (json.dumps(about).encode(), "application/json"),
            "/model.tflite": (model.read_bytes(), "application/octet-stream"),
            "/face.tflite": ((HERE / FACE_MODELS["near"]).read_bytes(), "application/octet-stream"),
            **{route: ((folder / f).read_bytes(), kind) for route, (f, kind) in SERVED.items()},
        }
        names = own_names() | {h.lower() for h in allow_hosts} | {host.lower()}
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(files, names))
        except OSError as exc:
            raise PhoneError(f"--serve {address}: cannot listen there ({exc.strerror}); choose another port") from None
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if cert or key:
            if not (cert and key):
                raise PhoneError("--cert and --key go together: the certificate and its private key")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as exc:
                raise PhoneError(f"--cert {cert} --key {key}: cannot be used ({exc}); see docs/mobile.md") from None
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.host, self.port = host, self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="edgefer-phone", daemon=True).start()

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "::1") else self.host
        return f"{self.scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(files: dict, names: set[str]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgefer"
        timeout = 10

        def log_message(self, *args):
            pass

        def do_GET(self):
            self._route(body=True)

        def do_HEAD(self):
            self._route(body=False)

        def _not_allowed(self):
            self._reply(405, b"method not allowed: the phone page only answers GET and HEAD\n", "text/plain", True)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

        def _route(self, body: bool):
            if not allowed_host(host_name(self.headers.get("Host", "")), names):
                return self._reply(
                    403, b"host not allowed: open the page by this machine's address or name\n", "text/plain", body
                )
            found = files.get(urlsplit(self.path).path)
            if found is None:
                return self._reply(404, b"not found\n", "text/plain", body)
            self._reply(200, *found, body)

        def _reply(self, status: int, data: bytes, kind: str, body: bool):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CSP)
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def camera_file(video, out, frames: int = 0) -> Path:
    """A video as a Y4M file, what Chromium's fake camera plays
    (--use-fake-device-for-media-stream --use-file-for-fake-video-capture=OUT): the page tried on a
    desktop, and in tests, on a known clip. frames: at most this many (0: all)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    out = Path(out)
    written = 0
    with open(out, "wb") as f:
        while not frames or written < frames:
            ok, bgr = capture.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            if not written:
                f.write(f"YUV4MPEG2 W{w} H{h} F{round(fps)}:1 Ip A1:1 C420jpeg\n".encode())
            f.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
            written += 1
    capture.release()
    if not written:
        raise PhoneError(f"{video}: no frame could be read")
    return out


def chromium(camera, browser="/usr/bin/chromium", driver="/usr/bin/chromedriver", width=900, height=700):
    """Headless Chromium (selenium) whose camera plays the Y4M file `camera`; MediaPipe runs on its CPU."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking",
        "--disable-component-update",
        "--enable-unsafe-swiftshader",  # WebGL in software where there is no GPU (headless, CI)
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(driver)), options=options)


def main(argv=None) -> int:
    p = CommandParser(prog="edgefer-phone", description=__doc__, formatter_class=OneDefault)
    p.add_argument("--model", default=DEFAULT, help="a bundled model (its phone form) or a phone-form .tflite")
    p.add_argument("--serve", default="8000", help="PORT or HOST:PORT; 0.0.0.0:PORT for phones on the network")
    p.add_argument("--cert", help="TLS certificate (PEM): serve https, which a phone's browser needs for the camera")
    p.add_argument("--key", help="the certificate's private key (PEM)")
    p.add_argument("--web-files", default=str(WEB_FILES), help="MediaPipe's @mediapipe/tasks-vision package folder")
    p.add_argument("--allow-host", action="append", default=[], help="another name this machine is reached by")
    args = p.parse_args(argv)
    try:
        server = PhoneServer(args.model, args.serve, args.web_files, args.cert, args.key, args.allow_host)
    except EdgeferError as exc:
        print(f"edgefer-phone: error: {exc}", file=sys.stderr)
        return 2
    print(f"serving the phone page at {server.url} (Ctrl-C stops)", flush=True)
    if server.scheme == "http" and server.host not in ("127.0.0.1", "::1", "localhost"):
        print("edgefer-phone: a phone's browser gives the camera only over https: pass --cert and --key", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
