"""The live view (`edgefer-cam --serve`) against the real clip: HTTP behaviour, then a real browser
(Debian's Chromium headless, driven by Selenium); the CSV and timeline report; the Tk window under
Xvfb. Chromium, ChromeDriver and Xvfb come from apt (.ci/run installs them); tests that need one
skip with the reason where it is missing."""

import csv
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(
    find_spec("ai_edge_litert") is None and find_spec("tflite_runtime") is None,
    reason="the device extra (ai-edge-litert) is not installed",
)
from edgefer.device import cam
from edgefer.device.latency import Latency
from edgefer.device.pipeline import Face
from edgefer.device.serve import LiveView, ServeError, ViewServer, parse_address
from edgefer.device.sources import Frame
from edgefer.device.timeline import Timeline

CLIP = REPO / "media" / "talking_face_640x360.mp4"  # ships with the project (media/NOTICE)
needs_clip = pytest.mark.skipif(not CLIP.exists(), reason=f"needs {CLIP} (ships in the repository)")
ARTIFACTS = Path(os.environ.get("EDGEFER_TEST_ARTIFACTS", REPO / "runs" / "test_artifacts"))
TOKEN = "test-token-123"


def start_cam(*args, timeout=60, env=None):
    """edgefer-cam in its own process; returns (process, base URL) once it prints where it serves
    (the printed line kept as `process.served`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgefer.device.cam", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        match = re.search(r"live view: http://\S+?:(\d+)/", line)
        if match:
            proc.served = line
            return proc, f"http://127.0.0.1:{match.group(1)}"
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("edgefer-cam did not start serving:\n" + "".join(lines))


def stop_cam(proc):
    proc.send_signal(signal.SIGTERM)  # what systemd sends
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def get(url, path, headers=None, method="GET"):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    body = response.read() if not response.getheader("Content-Type", "").startswith("multipart") else b""
    conn.close()
    return response.status, body


def read_mjpeg_frames(url, path, n):
    """The first `n` JPEGs of an MJPEG stream, as bytes."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200 and "multipart/x-mixed-replace" in response.getheader("Content-Type")
    frames = []
    while len(frames) < n:
        line = response.fp.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            response.fp.readline()
            frames.append(response.fp.read(length))
    conn.close()
    return frames


@pytest.fixture(scope="module")
def served():
    """The clip, looped at its own frame rate, served beyond loopback with a token."""
    if not CLIP.exists():
        pytest.skip(f"needs {CLIP} (ships in the repository)")
    proc, url = start_cam(
        "--source",
        CLIP,
        "--loop",
        "--realtime",
        "--headless",
        "--report-every",
        "0",
        "--serve",
        "0.0.0.0:0",
        "--token",
        TOKEN,
    )
    deadline = time.monotonic() + 60  # the server answers before the first frame is through the pipeline
    while time.monotonic() < deadline:
        state = json.loads(get(url, f"/state.json?token={TOKEN}")[1])
        if state["frames"] >= 5 and state["faces"]:
            break
        time.sleep(0.2)
    yield url
    rc, out = stop_cam(proc)
    assert rc == 0, out


def test_routes_tokens_and_methods(served):
    assert get(served, f"/?token={TOKEN}")[0] == 200
    assert get(served, "/", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    for path in ("/", "/state.json", "/stream.mjpg", "/?token=wrong", "/state.json?token="):
        assert get(served, path)[0] == 401, path
    for path in ("/../../etc/passwd", "/edgefer/device/live.html", "/cam.py", "/favicon.ico", "/state.json/x"):
        assert get(served, f"{path}?token={TOKEN}")[0] == 404, path
    for method in ("POST", "PUT", "DELETE"):
        assert get(served, f"/state.json?token={TOKEN}", method=method)[0] == 405
    status, body = get(served, f"/state.json?token={TOKEN}")
    state = json.loads(body)
    assert state["labels"] == list(state["faces"][0]["probs"]) and state["latency"]["stages"]["classify"]["count"] > 0
    assert state["about"]["model"].endswith(".tflite")


def test_four_viewers_at_once_and_one_that_never_reads(served):
    stalled = socket.create_connection(("127.0.0.1", int(served.rsplit(":", 1)[1])))
    stalled.sendall(f"GET /stream.mjpg?token={TOKEN} HTTP/1.0\r\n\r\n".encode())  # and never reads
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        streams = list(pool.map(lambda _: read_mjpeg_frames(served, f"/stream.mjpg?token={TOKEN}", 5), range(4)))
    for frames in streams:
        assert len(frames) == 5 and all(f[:2] == b"\xff\xd8" for f in frames)  # JPEG start-of-image
        assert len({f for f in frames}) > 1  # the video moves
    _, body = get(served, f"/state.json?token={TOKEN}")
    frames_before = json.loads(body)["frames"]
    time.sleep(1.0)
    _, body = get(served, f"/state.json?token={TOKEN}")
    assert json.loads(body)["frames"] > frames_before  # the stalled viewer does not hold the pipeline
    stalled.close()


def test_bad_addresses_are_named():
    assert parse_address("8000") == ("127.0.0.1", 8000)
    assert parse_address("0.0.0.0:8000") == ("0.0.0.0", 8000)
    assert parse_address("[::1]:8000") == ("::1", 8000)
    for bad in ("http", "1:2:x", "99999"):
        with pytest.raises(ServeError, match="--serve"):
            parse_address(bad)


def test_loopback_needs_no_token_and_the_encoder_sleeps_without_viewers():
    latency = Latency()
    view = LiveView({"model": "m"}, ["a", "b"], latency)
    server = ViewServer(view, "127.0.0.1:0", token=None)
    try:
        assert server.urls() == [f"http://127.0.0.1:{server.port}/"]
        rgb = np.zeros((48, 64, 3), np.uint8)
        for i in range(20):
            view.publish(
                Frame(rgb, i / 25, i),
                [Face((1, 1, 10, 10), "a", {"a": 0.7, "b": 0.3}, 0.9, track=0)],
            )
        time.sleep(0.2)
        assert view.encoded == 0  # nobody watched: nothing was encoded
        status, body = get(f"http://127.0.0.1:{server.port}", "/state.json")
        assert status == 200 and json.loads(body)["frames"] == 20
    finally:
        server.close()


def test_beyond_loopback_a_token_is_made_unless_no_auth(monkeypatch, capsys):
    class FakeServer:
        def __init__(self, view, address, token, allow_hosts=()):
            self.token, self.view = token, view
            view.close()

        def urls(self):
            return ["http://x/"]

    class FakePipeline:
        classifier = type("C", (), {"labels": ["a", "b"]})

        def about(self):
            return {}

    monkeypatch.setattr(cam, "ViewServer", FakeServer)
    args = cam.parser().parse_args(["--serve", "0.0.0.0:9"])
    assert len(cam.start_view(args, FakePipeline(), Latency()).token) >= 16
    args = cam.parser().parse_args(["--serve", "0.0.0.0:9", "--no-auth"])
    assert cam.start_view(args, FakePipeline(), Latency()).token is None
    assert "anyone who can reach this machine" in capsys.readouterr().err
    args = cam.parser().parse_args(["--serve", "9"])
    assert cam.start_view(args, FakePipeline(), Latency()).token is None
    # an empty token (EDGEFER_TOKEN= in an environment file) is no token: a new one, and a line saying so
    monkeypatch.setenv("EDGEFER_TOKEN", "")
    args = cam.parser().parse_args(["--serve", "0.0.0.0:9"])
    assert len(cam.start_view(args, FakePipeline(), Latency()).token) >= 16
    assert "token given (--token or $EDGEFER_TOKEN) is empty" in capsys.readouterr().err


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_the_page_in_a_real_browser(served):
    if find_spec("selenium") is None:
        pytest.skip("selenium is not installed (the dev extra)")
    browser, driver_path = chromium(), shutil.which("chromedriver")
    if not (browser and driver_path):
        pytest.skip("needs Chromium and ChromeDriver (apt install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(f"{served}/?token={TOKEN}")

        def read():
            return driver.execute_script("""
                const img = document.getElementById('video');
                const c = document.createElement('canvas'); c.width = 64; c.height = 36;
                let pixels = null;
                if (img.naturalWidth) { const g = c.getContext('2d'); g.drawImage(img, 0, 0, 64, 36);
                    pixels = Array.from(g.getImageData(0, 0, 64, 36).data.filter((_, i) => i % 4 == 0)); }
                return {width: img.naturalWidth, pixels: pixels,
                        bars: Array.from(document.querySelectorAll('.face .fill')).map(e => e.style.width),
                        latency: document.getElementById('latency').innerText,
                        about: document.getElementById('about').innerText};""")

        deadline = time.monotonic() + 30
        first = read()
        while (not first["width"] or not first["bars"]) and time.monotonic() < deadline:
            time.sleep(0.5)
            first = read()
        assert first["width"] == 640, "the video element shows no decoded frame"
        assert np.std(first["pixels"]) > 10  # a picture, not a blank
        assert "classify" in first["latency"] and "tflite" in first["about"]
        time.sleep(2.0)
        second = read()
        assert second["pixels"] != first["pixels"], "the video does not move"
        assert second["bars"] != first["bars"], "the probability bars do not change"
        assert second["latency"] != first["latency"], "the latency table does not change"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "live_view.png"))

        driver.get(f"{served}/?token=wrong")  # the page itself is refused
        assert "token missing or wrong" in driver.find_element("tag name", "body").text
    finally:
        driver.quit()


@needs_clip
def test_video_report_csv_and_timeline(tmp_path, capsys):
    table, png = tmp_path / "faces.csv", tmp_path / "timeline.png"
    rc = cam.main(
        ["--source", str(CLIP), "--headless", "--csv", str(table), "--timeline", str(png), "--max-frames", "100"]
    )
    assert rc == 0
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 100 and rows[0]["track"] == "0"
    labels = list(rows[0])[11:]
    assert abs(sum(float(rows[0][c]) for c in labels) - 1) < 0.02 and rows[0]["label"] in labels
    assert [float(r["t"]) for r in rows] == sorted(float(r["t"]) for r in rows)
    from PIL import Image

    assert Image.open(png).size[0] == 1100
    # a rerun appends; another model's columns are refused with the file named
    assert cam.main(["--source", str(CLIP), "--headless", "--csv", str(table), "--max-frames", "10"]) == 0
    assert len(list(csv.DictReader(open(table)))) == 110
    capsys.readouterr()
    assert (
        cam.main(["--source", str(CLIP), "--headless", "--csv", str(table), "--model", "ferplus", "--max-frames", "1"])
        == 2
    )
    assert str(table) in capsys.readouterr().err


def test_timeline_bins_by_time_and_forgets_beyond_keep():
    timeline = Timeline(["a", "b"], bin_seconds=0.5, keep=2.0)
    for i in range(100):  # 4 s at 25 fps
        timeline.add(i / 25, [Face((0, 0, 1, 1), "a", {"a": 1.0, "b": 0.0}, 1.0, track=3)])
    t, p = timeline.series(3)
    assert len(t) <= 5 and t[-1] == 3.5 and np.allclose(p[:, 0], 1.0)
    assert timeline.dominant_share(3) == {"a": 1.0}


@needs_clip
def test_a_window_under_xvfb():
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("needs Xvfb (apt install xvfb; .ci/run does)")
    if find_spec("tkinter") is None:
        pytest.skip("this Python has no tkinter")
    display = ":97"
    server = subprocess.Popen([xvfb, display, "-screen", "0", "1024x768x24"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        env = dict(os.environ, DISPLAY=display)
        code = (
            "from edgefer.device.outputs import open_window; import numpy as np; "
            "w = open_window('edgefer'); assert w is not None; "
            "shown = [w.show(np.full((120, 160, 3), 90, np.uint8)) for _ in range(5)]; "
            "w.root.update(); print('shown', all(shown), w.root.winfo_viewable(), w.label.winfo_width()); "
            "w.close(); print('closed', w.show(np.zeros((2, 2, 3), np.uint8)))"
        )
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        shown = re.search(r"shown (\w+) (\d) (\d+)", out.stdout)
        assert shown and shown.groups()[:2] == ("True", "1") and int(shown.group(3)) >= 160, out.stdout + out.stderr
        assert "closed False" in out.stdout
        run = subprocess.run(
            [sys.executable, "-m", "edgefer.device.cam", "--source", str(CLIP), "--max-frames", "20"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert run.returncode == 0 and "no window" not in run.stdout + run.stderr, run.stdout + run.stderr
        assert "draw" in run.stdout  # frames were drawn for the window
    finally:
        server.terminate()


@needs_clip
def test_a_looped_file_keeps_its_clock_running_and_realtime_paces_it():
    from edgefer.device.sources import open_source

    source = open_source(str(CLIP), loop=True)
    times = [frame.t for _, frame in zip(range(260), source)]  # the clip has 225 frames
    source.close()
    assert all(b > a for a, b in zip(times, times[1:])) and times[-1] > 10.0
    source = open_source(str(CLIP), realtime=True)
    start = time.monotonic()
    last = [frame.t for _, frame in zip(range(13), source)][-1]
    source.close()
    assert time.monotonic() - start >= last - 0.01  # 12 frames at 25 fps: not before their time


@needs_clip
def test_pairs_read_a_compound_from_a_basic_model(tmp_path, capsys):
    table = tmp_path / "faces.csv"
    assert (
        cam.main(
            [
                "--source",
                str(CLIP),
                "--headless",
                "--model",
                "ferplus",
                "--pairs",
                "0.0",
                "--csv",
                str(table),
                "--max-frames",
                "20",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(table)))
    from edgefer.core.taxonomy import COMPOUND11

    assert rows and all(r["pair"] == "" or r["pair"] in COMPOUND11 for r in rows)
    assert any(r["pair"] for r in rows)  # at 0.0 any face whose top two form a RAF-DB pair gets one


@needs_clip
def test_pairs_on_a_model_without_basic_emotions_is_refused_in_one_line(tmp_path, capsys):
    from edgefer.core import card as card_mod
    from edgefer.core.taxonomy import COMPOUND11
    from edgefer.models import model_path

    model = model_path()
    card = card_mod.read_embedded(model)
    compound = card_mod.with_spec(card, card_mod.spec(card).replace(labels=COMPOUND11[:7], taxonomy="compound11"))
    path = tmp_path / "compound7.tflite"
    path.write_bytes(card_mod.embed(card_mod.model_bytes(model.read_bytes()), compound))
    assert (
        cam.main(["--source", str(CLIP), "--headless", "--model", str(path), "--pairs", "0.2", "--max-frames", "1"])
        == 2
    )
    err = capsys.readouterr().err
    assert "--pairs reads two basic emotions" in err and "compound7.tflite" in err and len(err.splitlines()) == 1


@needs_clip
def test_an_empty_token_never_opens_the_camera_beyond_loopback():
    """EDGEFER_TOKEN= in a service's environment file: the server beyond loopback still needs a
    token (a new one); a request without it is refused. (A real edgefer-cam on 0.0.0.0, asked on loopback.)"""
    import os

    env = dict(os.environ, EDGEFER_TOKEN="")
    proc, url = start_cam("--source", CLIP, "--loop", "--realtime", "--headless", "--serve", "0.0.0.0:0", env=env)
    try:
        assert get(url, "/state.json")[0] == 401
        token = re.search(r"token=(\S+)", proc.served).group(1)
        assert len(token) >= 16 and get(url, f"/state.json?token={token}")[0] == 200
    finally:
        stop_cam(proc)
    view = LiveView({}, ["a"], Latency())
    with pytest.raises(ServeError, match="token is empty"):
        ViewServer(view, "127.0.0.1:0", token="")
    view.close()


def test_a_page_under_another_host_name_is_refused_dns_rebinding():
    """A web page the user visits can point its own name at 127.0.0.1 (DNS rebinding); the request
    then carries that name in Host and is refused. Loopback names, IP addresses, this machine's names
    and --allow-host names are answered."""
    view = LiveView({}, ["a"], Latency())
    server = ViewServer(view, "127.0.0.1:0", token=None, allow_hosts=["camera.example"])
    try:
        url = f"http://127.0.0.1:{server.port}"
        status, body = get(url, "/state.json", headers={"Host": "evil.example"})
        assert status == 403 and b"--allow-host" in body
        assert get(url, "/", headers={"Host": f"evil.example:{server.port}"})[0] == 403
        for host in (
            "localhost",
            f"localhost:{server.port}",
            f"127.0.0.1:{server.port}",
            "[::1]:80",
            "192.168.1.20",
            "camera.example",
            socket.gethostname(),
        ):
            assert get(url, "/state.json", headers={"Host": host})[0] == 200, host
    finally:
        server.close()


def test_connections_past_the_bound_get_503_and_no_thread():
    """Viewers hold their slots: past the cap a connection is answered 503 at once and closed, with no
    thread of its own; when the viewers go, the live view serves again."""
    view = LiveView({}, ["a"], Latency())
    server = ViewServer(view, "127.0.0.1:0", token=None, max_connections=4)
    held = []
    try:
        for _ in range(4):  # four viewers of the stream: each holds its thread
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            held.append(sock)
        time.sleep(0.3)
        threads = threading.active_count()
        extra = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
        answers = []
        for sock in extra:
            answers.append(sock.recv(200))
            sock.close()
        assert all(a.startswith(b"HTTP/1.1 503") and b"too many viewers" in a for a in answers)
        assert threading.active_count() <= threads + 1
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            view.publish(Frame(np.zeros((8, 8, 3), np.uint8), 0.0, 0), [])  # a viewer that left learns it on a write
            if get(f"http://127.0.0.1:{server.port}", "/state.json")[0] == 200:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not serve again once the held connections closed")
    finally:
        for sock in held:
            sock.close()
        server.close()


def test_slowloris_cannot_keep_a_viewer_out_and_slow_headers_are_dropped(monkeypatch):
    """Connections trickling their headers a byte at a time fill every slot; a real viewer is still
    served (the longest-reading connection is dropped to make room), and a connection still sending
    its headers after HEADER_SECONDS is closed."""
    from edgefer.device import serve as serve_mod

    monkeypatch.setattr(serve_mod, "HEADER_SECONDS", 1.0)
    view = LiveView({}, ["a"], Latency())
    server = ViewServer(view, "127.0.0.1:0", token=None, max_connections=4)
    slow = []
    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHo")
            slow.append(sock)
        for _ in range(3):
            assert get(f"http://127.0.0.1:{server.port}", "/state.json")[0] == 200
        time.sleep(1.5)
        for sock in slow:  # every slow one was dropped: by a viewer taking its slot, or by the deadline
            try:
                sock.sendall(b"s")
                data = sock.recv(100)
            except OSError:
                data = b""
            assert data == b"" or data.startswith(b"HTTP/1.1 503"), data
    finally:
        for sock in slow:
            sock.close()
        server.close()


def test_host_headers_and_the_bearer_scheme_as_the_rfcs_say():
    view = LiveView({}, ["a"], Latency())
    server = ViewServer(view, "127.0.0.1:0", token="ab+cd é")
    try:

        def raw(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(request)
                return sock.recv(300)

        auth = "Authorization: bearer ab+cd é\r\n".encode()
        assert raw(b"GET /state.json HTTP/1.1\r\n" + auth + b"\r\n").startswith(b"HTTP/1.0 400")  # no Host
        two = b"GET /state.json HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n" + auth + b"\r\n"
        assert raw(two).startswith(b"HTTP/1.0 400")
        assert raw(b"GET /state.json HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\n").startswith(b"HTTP/1.0 200")
        (url,) = server.urls()  # the printed URL carries the token percent-encoded, and opens the view
        assert "token=ab%2Bcd%20%C3%A9" in url
        assert get(url.split("/?")[0], "/state.json?" + url.split("?")[1])[0] == 200
    finally:
        server.close()
