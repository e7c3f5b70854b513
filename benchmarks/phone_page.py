"""The phone page (edgefer-phone) in headless Chromium, its camera fed the bundled clip: what it reads
against edgefer-cam on the same frames, and its time a frame beside edgefer-bench's on this machine.

The page runs MediaPipe Tasks for the web (WebAssembly, CPU) and does all the work on every frame:
BlazeFace, then each face through the phone form (the face and its mirror image inside the graph).
edgefer-bench is measured twice: doing the same work on every frame (--detect-every 1 --classify-every 1
--no-alternate-sides), and with its default shortcuts. Chromium's fake camera plays the clip from its
start and loops; each page frame's media time says which clip frame it showed.

    python benchmarks/phone_page.py --json results/phone_page.json     # needs Chromium, ChromeDriver, selenium
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgefer.core.files import write_json
from edgefer.device.bench import bench_one, machine
from edgefer.device.phone import PhoneServer, camera_file, chromium
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import model_path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "media" / "talking_face_640x360.mp4"


def run_page(model: str, camera: Path, frames: int, timeout: float = 300) -> dict:
    server = PhoneServer(model, "127.0.0.1:0")
    driver = chromium(camera)
    try:
        driver.get(f"{server.url}?frames={frames}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if driver.execute_script("return !!(window.edgefer && window.edgefer.done)"):
                break
            time.sleep(0.5)
        report = driver.execute_script("return window.edgefer")
        report["user_agent"] = driver.execute_script("return navigator.userAgent")
        return report
    finally:
        driver.quit()
        server.close()


def cam_labels(model: str, frames: int) -> list:
    """edgefer-cam's label of the clip's largest face on each of its first `frames` frames (defaults)."""
    labels = []
    source = open_source(str(CLIP))
    try:
        with Pipeline(model_path(model)) as pipeline:
            for frame in source:
                faces = pipeline.process(frame)
                labels.append(max(faces, key=lambda f: f.box[2] * f.box[3]).label if faces else None)
                if len(labels) >= frames:
                    break
    finally:
        source.close()
    return labels


def stats(values) -> dict:
    v = np.asarray(values, np.float64)
    return {
        "p50_ms": round(float(np.percentile(v, 50)), 2),
        "p90_ms": round(float(np.percentile(v, 90)), 2),
        "mean_ms": round(float(v.mean()), 2),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="bundled name; repeat (default: fer2013-balanced, large)")
    p.add_argument("--frames", type=int, default=200, help="page frames measured after the first 10")
    p.add_argument("--json", default="results/phone_page.json")
    args = p.parse_args()
    fps = cv2.VideoCapture(str(CLIP)).get(cv2.CAP_PROP_FPS) or 25
    results = {"source": str(CLIP.relative_to(REPO)), "machine": machine(), "python": platform.python_version()}
    results["models"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        camera = camera_file(CLIP, Path(tmp) / "clip.y4m")
        clip_frames = int(cv2.VideoCapture(str(CLIP)).get(cv2.CAP_PROP_FRAME_COUNT))
        for name in args.model or ["fer2013-balanced", "large"]:
            page = run_page(name, camera, args.frames + 10)
            results["browser"] = page["user_agent"]
            measured = page["frames"][10:]  # the first frames load and warm the WebAssembly
            ours = cam_labels(name, clip_frames)
            shown = [f for f in measured if f["faces"]]
            same = [
                max(f["faces"], key=lambda x: x["box"][2] * x["box"][3])["label"]
                == ours[int(round(f["media_time"] * fps)) % clip_frames]
                for f in shown
            ]
            labels = [max(f["faces"], key=lambda x: x["box"][2] * x["box"][3])["label"] for f in shown]
            all_work = bench_one(
                str(CLIP), model_path(name), 1, 300, 30, detect_every=1, classify_every=1, alternate_sides=False
            )
            default = bench_one(str(CLIP), model_path(name), 1, 300, 30)
            results["models"][name] = {
                "page_frames": len(measured),
                "frames_with_faces": len(shown),
                "same_label_as_edgefer_cam": round(float(np.mean(same)), 4) if same else None,
                "page_labels": {k: labels.count(k) for k in sorted(set(labels))},
                "edgefer_cam_labels": {k: ours.count(k) for k in sorted(set(ours) - {None})},
                "page": {
                    "detect": stats([f["detect_ms"] for f in measured]),
                    "classify": stats([f["classify_ms"] for f in measured]),
                    "total": stats([f["detect_ms"] + f["classify_ms"] for f in measured]),
                },
                "edgefer_bench_all_work": {k: all_work["stages"][k] for k in ("detect", "classify", "total")},
                "edgefer_bench_default": {k: default["stages"][k] for k in ("detect", "classify", "total")},
            }
            print(name, results["models"][name], flush=True)

    def ms(s):
        return f"{s['p50_ms']:.2f} / {s['p90_ms']:.2f} / {s['mean_ms']:.2f}"

    results["tables"] = {
        "speed": {
            "columns": [
                "model",
                "phone page in headless Chromium (MediaPipe web, CPU): detect + classify",
                "edgefer-bench, the same work every frame: detect + preprocess + classify + capture",
                "edgefer-bench, its defaults",
            ],
            "rows": [
                [
                    f"`{k}`",
                    ms(v["page"]["total"]),
                    ms(v["edgefer_bench_all_work"]["total"]),
                    ms(v["edgefer_bench_default"]["total"]),
                ]
                for k, v in results["models"].items()
            ],
        },
        "readings": {
            "columns": ["model", "page frames", "with a face", "same label as edgefer-cam on that clip frame"],
            "rows": [
                [
                    f"`{k}`",
                    v["page_frames"],
                    v["frames_with_faces"],
                    f"{100 * v['same_label_as_edgefer_cam']:.1f}%",
                ]
                for k, v in results["models"].items()
            ],
        },
    }
    write_json(args.json, results)


if __name__ == "__main__":
    main()
