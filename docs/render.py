"""Render the tables of docs/results/*.md and README.md from the JSON files under results/.

A table in a page is a block between two markers; everything else in the page is prose, written
by hand. The opening marker names a view and its JSON files:

    <!-- table rows results/qat_vs_ptq.json#variants -->
    | ... the rendered table ... |
    <!-- end table -->

`rows` takes `{"columns": [...], "rows": [[...], ...]}` (the table a study kept, under `tables`
when a file holds several); the other views read the JSON a benchmark wrote as it wrote it
(benchmarks/cross_check.py, benchmarks/fer_compare.py, benchmarks/bundled_check.py, edgefer-bench).

    python docs/render.py           # rewrite every table block from its JSON
    python docs/render.py --check   # exit 1 and name each block that differs (tests/test_results.py)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs" / "results").glob("*.md"))]
BLOCK = re.compile(r"(<!-- table (\S+) ([^>]+?) -->\n)(.*?)(<!-- end table -->)", re.S)
NAMES = {
    "fer2013-balanced": "`fer2013-balanced` (default)",
    "fer2013": "`fer2013`",
    "ferplus": "`ferplus`",
    "large": "`large`",
    "fer": "`fer` package 25.10.3",
}


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def markdown(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def load(ref: str):
    path, _, key = ref.partition("#")
    data = json.loads((REPO / path).read_text())
    return data["tables"][key] if key else data


def rows_view(table: dict) -> str:
    return markdown(table["columns"], table["rows"])


def faces_view(check: dict) -> str:
    """benchmarks/cross_check.py: each model on FER+ majority labels, FER-2013 labels and Yale frames."""
    rows = []
    for name, m in check["models"].items():
        v, t, y = m["ferplus_val"], m["ferplus_test"], m["yale"]
        recall = " / ".join(f"{y['recall'].get(c, 0):.3f}" for c in ("happy", "neutral", "sad", "surprise"))
        rows.append(
            [
                NAMES.get(name, name),
                pct(v["agrees_with_ferplus_majority"]),
                pct(t["agrees_with_ferplus_majority"]),
                pct(t["ferplus_mean_recall"]),
                pct(t["clear_emotion_mean_recall"]),
                pct(t["agrees_with_fer2013_label"]),
                f"{y['faces_found']}",
                f"{pct(y['accuracy'])} ({round(y['accuracy'] * y['images'])})",
                recall,
            ]
        )
    return markdown(
        [
            "model",
            "FER+ majority, PublicTest",
            "FER+ majority, PrivateTest",
            "mean per-class FER+ recall, PrivateTest",
            "clear emotional faces, mean recall, PrivateTest",
            "FER-2013 label, PrivateTest",
            "Yale: faces found (59)",
            "Yale: right (59)",
            "Yale recall happy / neutral / sad / surprise",
        ],
        rows,
    )


def at_box_view(check: dict) -> str:
    """benchmarks/cross_check.py: FER+ agreement as FER-2013 crops a face, and cropped at the detector's box."""
    rows = []
    for name, m in check["models"].items():
        rows.append(
            [
                NAMES.get(name, name),
                f"{pct(m['ferplus_val']['agrees_with_ferplus_majority'])} → {pct(m['ferplus_val_at_box']['agrees_with_ferplus_majority'])}",
                f"{pct(m['ferplus_test']['agrees_with_ferplus_majority'])} → {pct(m['ferplus_test_at_box']['agrees_with_ferplus_majority'])}",
                f"{pct(m['ferplus_val_at_box']['ferplus_mean_recall'])} / {pct(m['ferplus_test_at_box']['ferplus_mean_recall'])}",
            ]
        )
    return markdown(
        [
            "model",
            "FER+ majority, PublicTest: as cropped → at the box",
            "PrivateTest: as cropped → at the box",
            "mean per-class FER+ recall at the box, PublicTest / PrivateTest",
        ],
        rows,
    )


def paired_view(check: dict) -> str:
    """benchmarks/cross_check.py: each model minus the first on the same faces, 95% paired-bootstrap interval."""

    def pts(d):
        return f"{100 * d['difference']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"

    first = NAMES.get(check["paired_against"], check["paired_against"])
    rows = [
        [
            f"{NAMES.get(name, name)} − {first}",
            pts(d["ferplus_val"]),
            pts(d["ferplus_test"]),
            pts(d["fer2013_label_test"]),
            f"{pts(d['clear_emotions_val'])} / {pts(d['clear_emotions_test'])}",
            pts(d["yale"]),
        ]
        for name, d in check["paired"].items()
    ]
    return markdown(
        [
            "models",
            "FER+ majority, PublicTest (points)",
            "FER+ majority, PrivateTest",
            "FER-2013 label, PrivateTest",
            "clear emotional faces, mean recall, PublicTest / PrivateTest",
            "Yale",
        ],
        rows,
    )


def machine_name(m: dict) -> str:
    """`Intel(R) Xeon(R) Processor, 2 cores, AVX-512 VNNI`: the CPU and the SIMD that sets int8 speed."""
    simd = (
        "AVX-512 VNNI"
        if "avx512_vnni" in m["simd"]
        else "AVX2"
        if "avx2" in m["simd"]
        else "NEON"
        if "asimd" in m["simd"]
        else ""
    )
    return ", ".join(x for x in (m["cpu"], f"{m['cores']} cores", simd) if x)


def headline_view(check: dict, speed: dict) -> str:
    """The README's table: benchmarks/cross_check.py and benchmarks/fer_compare.py, each as it wrote it."""
    rows = []
    for name, m in check["models"].items():
        t, y = m["ferplus_test"], m["yale"]
        if name == "fer":
            t_ms, size = speed["fer"], "–"
        else:
            t_ms = speed["edgefer"][name]["stages"]["total"]
            size = f"{speed['edgefer'][name]['size_bytes'] / 1000:.0f} KB"
        rows.append(
            [
                NAMES.get(name, name),
                pct(t["agrees_with_ferplus_majority"]),
                pct(t["agrees_with_fer2013_label"]),
                f"{round(y['accuracy'] * y['images'])} of {y['images']}",
                size,
                f"{t_ms['p50_ms']:.2f} / {t_ms['p90_ms']:.2f} / {t_ms['mean_ms']:.2f} ms",
            ]
        )
    return markdown(
        [
            "model",
            "FER+ majority (what most of 10 people see)",
            "FER-2013's label",
            "Yale full frames, right",
            "size",
            f"ms per frame, p50 / p90 / mean ({machine_name(speed['machine'])}; edgefer on one thread)",
        ],
        rows,
    )


def speed_view(speed: dict) -> str:
    """benchmarks/fer_compare.py: each bundled model's pipeline and the `fer` package on the same frames."""
    f = speed["fer"]
    rows = []
    for name, r in speed["edgefer"].items():
        t = r["stages"]["total"]
        rows.append(
            [
                NAMES.get(name, name),
                f"{t['p50_ms']:.2f} / {t['p90_ms']:.2f} / {t['p99_ms']:.2f}",
                f"{t['mean_ms']:.2f}",
                f"{r['frames_with_faces']} / {speed['frames']}",
                f"{f['p50_ms'] / t['p50_ms']:.1f}×",
                f"{f['mean_ms'] / t['mean_ms']:.1f}×",
            ]
        )
    rows.append(
        [
            NAMES["fer"],
            f"{f['p50_ms']:.2f} / {f['p90_ms']:.2f} / {f['p99_ms']:.2f}",
            f"{f['mean_ms']:.2f}",
            f"{f['frames_with_faces']} / {speed['frames']}",
            "1.0×",
            "1.0×",
        ]
    )
    return markdown(
        [
            f"pipeline ({machine_name(speed['machine'])})",
            "ms per frame p50 / p90 / p99",
            "mean",
            "frames with a face",
            "`fer` p50 ÷ this p50",
            "`fer` mean ÷ this mean",
        ],
        rows,
    )


def bundled_view(own: dict) -> str:
    """benchmarks/bundled_check.py: each bundled model on its own test split, beside its card's figure."""
    rows = [
        [
            NAMES.get(name, name),
            r["dataset"],
            r["test_images"],
            pct(r["accuracy"]),
            f"{r['macro_f1']:.3f}",
            pct(r["single_pass_accuracy"]),
            pct(r["card_tflite_test"]),
        ]
        for name, r in own.items()
    ]
    return markdown(
        ["model", "dataset", "test images", "int8, as the card says", "macro-F1", "int8, single pass", "the card says"],
        rows,
    )


def bench_view(bench: dict) -> str:
    """edgefer-bench --json: per-stage latency for each model, face range and thread count, with the
    work per frame that does not depend on the machine (– where a run was made before it counted it)."""
    rows = []
    for r in bench["runs"]:
        s = r["stages"]
        rows.append(
            [
                Path(r["model"]).name,
                r["faces"],
                r["threads"],
                *(f"{s[k]['p50_ms']:.3f}" if k in s else "–" for k in ("capture", "detect", "preprocess", "classify")),
                f"{s['total']['p50_ms']:.3f} / {s['total']['mean_ms']:.3f}",
                f"{r['fps']:.1f}",
                f"{r['mmacs_per_frame']['total']:.1f}" if "mmacs_per_frame" in r else "–",
                f"{r['invokes_per_frame']['total']:.2f}" if "invokes_per_frame" in r else "–",
                f"{r['frames_with_faces']} / {r['frames']}",
            ]
        )
    return markdown(
        [
            "model",
            "faces",
            "threads",
            "capture p50 (ms)",
            "detect p50",
            "preprocess p50",
            "classify p50",
            "total p50 / mean",
            "FPS",
            "MMACs a frame",
            "invokes a frame",
            "frames with a face",
        ],
        rows,
    )


def shortcuts_view(runs: dict) -> str:
    """benchmarks/shortcuts.py: each setting of detect-every, classify-every and sides on the clip."""
    rows = [
        [
            r["detect_every"],
            r["classify_every"],
            "alternating" if r["alternate_sides"] else "both",
            pct(r["same_label"]),
            f"{r['faces_found']} / {r['frames']}",
            f"{r['mmacs_per_frame']['detect']:.1f} + {r['mmacs_per_frame']['classify']:.1f} = {r['mmacs_per_frame']['total']:.1f}",
            f"{r['invokes_per_frame']['total']:.2f}",
            f"{r['ms_mean']['total']:.2f}",
        ]
        for r in runs["rows"]
    ]
    return markdown(
        [
            "detect every",
            "read a steady face every",
            "sides a read",
            "same label as every frame, every stage",
            "faces found",
            "MMACs a frame, detect + classify",
            "invokes a frame",
            f"ms a frame, mean ({machine_name(runs['machine'])})",
        ],
        rows,
    )


def export_view(report: dict) -> str:
    """edgefer-export's NAME.report.json: the int8 model against its float32 reference on the run's test split."""
    rows = []
    for name, r in report["runs"].items():
        lat = r["latency_ms_median"]
        rows.append(
            [
                name,
                pct(r["accuracy"]),
                f"{r['macro_f1']:.3f}",
                pct(r["single_pass"]["accuracy"]) if "single_pass" in r else "–",
                f"{r['size_bytes'] / 1e6:.2f} MB",
                " / ".join(f"{v:.2f}" for v in lat.values()),
            ]
        )
    threads = " / ".join(k.replace("_thread", "") for k in next(iter(report["runs"].values()))["latency_ms_median"])
    return markdown(
        [
            f"model ({report['test_images']} test faces)",
            "accuracy, flip averaged" if report.get("flip_average") else "accuracy",
            "macro-F1",
            "single pass",
            "size",
            f"ms an invoke, median, {threads} threads",
        ],
        rows,
    )


def calibrate_view(result: dict) -> str:
    """edgefer-calibrate --json: the temperature and bar it fitted on PublicTest, and PrivateTest before and after."""
    t = result["privatetest_ferplus"]
    return markdown(
        [
            "temperature",
            "uncertain below",
            "PrivateTest ECE",
            "PrivateTest NLL",
            "faces shown uncertain",
            "right when uncertain / the rest",
        ],
        [
            [
                f"{result['temperature']:g}",
                f"{result['uncertain_below']:g}",
                f"{t['ece'][0]:.3f} → {t['ece'][1]:.3f}",
                f"{t['nll'][0]:.3f} → {t['nll'][1]:.3f}",
                pct(t["uncertain_share"]),
                f"{pct(t['accuracy_uncertain'])} / {pct(t['accuracy_rest'])}",
            ]
        ],
    )


def train_step_view(*runs: dict) -> str:
    """benchmarks/train_step.py --json, one file per input size: each round's time a training step."""
    rows = [
        [
            f"{r['size']} px",
            r["batch_size"],
            " / ".join(f"{x['ms_per_step']:.0f}" for x in r["rounds"]),
            " / ".join(f"{x['cpu_busy']:.2f}" for x in r["rounds"]),
        ]
        for r in runs
    ]
    return markdown(
        ["input", "batch", f"ms a training step, each round ({machine_name(runs[0]['machine'])})", "cores busy"], rows
    )


VIEWS = {
    "train_step": train_step_view,
    "calibrate": calibrate_view,
    "export": export_view,
    "rows": rows_view,
    "faces": faces_view,
    "at_box": at_box_view,
    "paired": paired_view,
    "headline": headline_view,
    "bundled": bundled_view,
    "speed": speed_view,
    "bench": bench_view,
    "shortcuts": shortcuts_view,
}


def render(text: str) -> str:
    def block(match):
        opening, view, refs = match.group(1), match.group(2), match.group(3).split()
        return opening + VIEWS[view](*(load(r) for r in refs)) + match.group(5)

    return BLOCK.sub(block, text)


def stale(pages=PAGES) -> list[str]:
    """The pages whose table blocks differ from what their JSON renders to."""
    return [str(p.relative_to(REPO)) for p in pages if render(p.read_text()) != p.read_text()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when a page differs from its JSON")
    args = p.parse_args(argv)
    if args.check:
        differ = stale()
        for page in differ:
            print(f"{page}: a table differs from its JSON under results/; run python docs/render.py", file=sys.stderr)
        return 1 if differ else 0
    for page in PAGES:
        page.write_text(render(page.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
