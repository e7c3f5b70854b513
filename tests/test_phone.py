"""edgefer-phone: the server hands over the page, MediaPipe's web files and the phone form, nothing
else; in headless Chromium, with the bundled clip as its camera, the page finds the face and reads
what edgefer-cam reads on the same frames."""

import http.client
import json
import shutil
import subprocess
import sys
import time
from importlib.util import find_spec

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(find_spec("ai_edge_litert") is None, reason="the device extra is not installed")
from edgefer.core import card as card_mod
from edgefer.device.phone import SERVED, WEB_FILES, PhoneError, PhoneServer, camera_file, chromium, phone_model
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import HERE, model_path

CLIP = REPO / "media" / "talking_face_640x360.mp4"


@pytest.fixture
def fake_web(tmp_path):
    """Stand-ins for MediaPipe's web files: the routes, not the browser."""
    for name, _ in SERVED.values():
        (tmp_path / "web" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "web" / name).write_bytes(b"// " + name.encode())
    return tmp_path / "web"


def get(server, path, method="GET", host=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, headers={"Host": host or f"127.0.0.1:{server.port}"})
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def test_the_server_serves_the_page_the_phone_form_and_mediapipes_files_only(fake_web):
    server = PhoneServer("fer2013-balanced", "127.0.0.1:0", fake_web)
    try:
        assert server.url.startswith("http://localhost:")
        status, kind, page = get(server, "/")
        assert status == 200 and kind.startswith("text/html") and b'src="/phone.js"' in page
        status, _, about = get(server, "/about.json")
        about = json.loads(about)
        assert about["card"]["quantization"]["profile"] == "mobile" and about["device"]["smoothing"] == 0.6
        assert get(server, "/model.tflite")[2] == (HERE / "mobile" / "fer2013_balanced_int8.tflite").read_bytes()
        assert get(server, "/tasks-vision/wasm/vision_wasm_internal.wasm")[1] == "application/wasm"
        for path in ("/../pyproject.toml", "/tasks-vision/package.json", "/edgefer/models/large_int8.tflite"):
            assert get(server, path)[0] == 404, path
        assert get(server, "/", method="POST")[0] == 405
        assert get(server, "/", host="attacker.example")[0] == 403  # DNS rebinding needs a name
    finally:
        server.close()


def test_only_the_phone_form_is_served_and_missing_web_files_are_named(tmp_path, fake_web):
    with pytest.raises(PhoneError, match="not the phone form.*edgefer-export .* --mobile"):
        phone_model(str(model_path("large")))
    with pytest.raises(PhoneError, match="nothing.tflite: no such model file"):
        phone_model("nothing.tflite")
    with pytest.raises(PhoneError, match="npm ci --prefix web"):
        PhoneServer("large", "127.0.0.1:0", tmp_path / "empty")
    with pytest.raises(PhoneError, match="--cert and --key go together"):
        PhoneServer("large", "127.0.0.1:0", fake_web, cert=tmp_path / "cert.pem")
    run = subprocess.run(
        [sys.executable, "-m", "edgefer.device.phone", "--model", "ferplus_int8.tflite"], capture_output=True, text=True
    )
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


def test_https_with_a_certificate(tmp_path, fake_web):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
         "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = PhoneServer("fer2013-balanced", "127.0.0.1:0", fake_web, cert, key)
    try:
        import ssl

        assert server.url.startswith("https://")
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, timeout=10, context=ssl._create_unverified_context()
        )
        conn.request("GET", "/about.json", headers={"Host": "localhost"})
        assert conn.getresponse().status == 200
    finally:
        server.close()


def test_the_page_in_headless_chromium_reads_the_clip_as_edgefer_cam(tmp_path):
    if find_spec("selenium") is None:
        pytest.skip("selenium is not installed (the dev extra)")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Chromium and ChromeDriver (apt install chromium chromium-driver; .ci/run does)")
    if not (WEB_FILES / "vision_bundle.mjs").is_file():
        pytest.skip("needs MediaPipe's web files: npm ci --prefix web (.ci/run does)")
    frames, fps = 75, 25
    camera = camera_file(CLIP, tmp_path / "clip.y4m", frames)
    ours = []
    source = open_source(str(CLIP))
    with Pipeline(model_path()) as pipeline:
        for frame in source:
            found = pipeline.process(frame)
            ours.append(found[0].label if found else None)
            if len(ours) == frames:
                break
    source.close()
    server = PhoneServer("fer2013-balanced", "127.0.0.1:0")
    driver = chromium(camera)
    try:
        driver.get(f"{server.url}?frames=50")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not driver.execute_script(
            "return !!(window.edgefer && window.edgefer.done)"
        ):
            time.sleep(0.5)
        report = driver.execute_script("return window.edgefer")
        status = driver.execute_script("return document.getElementById('status').textContent")
        drawn = driver.execute_script(
            "const c = document.getElementById('canvas'); return [c.width, c.height];"
        )  # fmt: skip
    finally:
        driver.quit()
        server.close()
    assert report["done"] and report["error"] is None, report["error"]
    assert drawn == [640, 360] and "ms a frame" in status
    shown = [f for f in report["frames"][5:] if f["faces"]]
    assert len(shown) >= 40
    same = [f["faces"][0]["label"] == ours[int(round(f["media_time"] * fps)) % frames] for f in shown]
    assert sum(same) >= 0.8 * len(same), f"{sum(same)} of {len(same)}"
    assert card_mod.read_embedded(HERE / "mobile" / "fer2013_balanced_int8.tflite")["labels"] == report["labels"]
