"""`edgefer-cam`: expressions on a webcam, a video file, a folder of images or the Pi camera."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from ..core import card as card_mod
from ..core.errors import EdgeferError, NotWritable
from ..core.faces import FACE_MODELS, MIN_SCORE
from ..core.files import (
    CommandParser,
    OneDefault,
    check_file_writable,
    probability,
    score,
    size_mb,
    thread_count,
    whole_number,
    write_json,
)
from ..core.quiet import VERBOSE_ENV
from ..models import model_path
from .latency import Latency
from .options import add_pipeline_options, chosen
from .outputs import Appender, FaceCsv, Recorder, check_record_path, open_window
from .pipeline import Pipeline, draw
from .serve import LiveView, ViewServer, is_loopback, new_token, parse_address
from .sources import open_source
from .summary import TrackSummary, still_line
from .timeline import Timeline
from .tracker import SMOOTHING


def parser():
    p = CommandParser(prog="edgefer-cam", description=__doc__, formatter_class=OneDefault)
    p.add_argument("--source", default="0", help="webcam index, video file, rtsp/http URL, image folder, or 'picamera'")
    p.add_argument(
        "--model",
        default=None,
        help="int8 .tflite with its card, or a bundled model by name: fer2013-balanced (default), fer2013, ferplus (8 classes with contempt)",
    )
    p.add_argument(
        "--faces",
        choices=tuple(FACE_MODELS),
        default="near",
        help="near: faces within about 2 m (short-range detector); far: smaller faces, a room or an "
        "audience (full-range detector, slower)",
    )
    add_pipeline_options(p)
    p.add_argument("--threads", type=thread_count, default=1, help="LiteRT threads for the expression model")
    p.add_argument("--min-score", type=score, default=MIN_SCORE, help="face detection threshold, above 0 and up to 1")
    p.add_argument(
        "--uncertain",
        type=probability,
        default=None,
        metavar="P",
        help="show a face as uncertain when its top probability is below P (0: never; default: as "
        "the model's card says: where validation faces were more often wrong than right)",
    )
    p.add_argument(
        "--smoothing",
        type=probability,
        default=SMOOTHING,
        help="EMA weight of past probabilities per face, 0 (off) up to below 1",
    )
    p.add_argument("--headless", action="store_true", help="no window (there is none anyway without a display)")
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the live view (video, probabilities, timelines, latency) on this port, on loopback "
        "unless a HOST is given (0.0.0.0: every network; then a token is needed)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("EDGEFER_TOKEN"),
        help="--serve: the token every request must carry (default: $EDGEFER_TOKEN; beyond loopback "
        "without one: a new one, printed)",
    )
    p.add_argument("--no-auth", action="store_true", help="--serve beyond loopback without a token")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="--serve: also answer requests for this host name (e.g. a DNS name or a reverse proxy's); "
        "loopback names, IP addresses and this machine's own names are always answered; repeat",
    )
    p.add_argument("--record", help="write the annotated video to this .mp4")
    p.add_argument("--jsonl", help="append one JSON line per frame: time, faces, box, label, probabilities")
    p.add_argument(
        "--rotate-mb",
        type=size_mb,
        default=0,
        metavar="MB",
        help="--jsonl and --csv: at this size a file is renamed NAME.1 (replacing the one before) and a new one "
        "begun, so a service keeps at most twice this per output (0: grow without bound)",
    )
    p.add_argument("--csv", help="append one row per face per frame: time, frame, track, box, label, probabilities")
    p.add_argument(
        "--timeline", help="at exit, write a PNG with one timeline per tracked face (probabilities over time)"
    )
    p.add_argument("--loop", action="store_true", help="a video file starts again at its end (a demo, a kiosk)")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="read a video file at its own frame rate, as a camera delivers frames (default: as fast as it goes)",
    )
    p.add_argument("--latency-json", help="write the latency report here at exit")
    p.add_argument(
        "--report-every", type=float, default=10.0, help="print the latency table every N seconds (0: only at exit)"
    )
    p.add_argument("--max-frames", type=whole_number, default=0, help="stop after N frames (0: at the source's end)")
    p.add_argument("--reconnect", action="store_true", help="wait for a camera that disappears instead of exiting")
    p.add_argument("--allow-float", action="store_true", help="run a float (non-int8) model too")
    p.add_argument(
        "--pairs",
        type=float,
        metavar="P",
        help="with a basic model (ferplus): show a compound such as 'happily surprised' when the two most "
        "probable emotions both reach P (0.125 was best on FER+ validation faces, compound or not)",
    )
    return p


def run(args) -> dict:
    model = model_path(args.model)  # a bad --model, output or address is reported before any camera is opened
    card_mod.read_embedded(model)
    given = {}
    for option in ("record", "jsonl", "csv", "timeline", "latency_json"):
        if getattr(args, option):
            flag = "--" + option.replace("_", "-")
            path = check_file_writable(getattr(args, option), flag).resolve()
            if path in given:  # two outputs into one file would interleave, or one would lose the other
                raise NotWritable(
                    f"{given[path]} and {flag} both name {getattr(args, option)}; give each output its own file"
                )
            given[path] = flag
    if args.record:
        check_record_path(args.record)
    if args.serve:
        parse_address(args.serve)
    latency = Latency()
    source = open_source(args.source, reconnect=args.reconnect, loop=args.loop, realtime=args.realtime)
    # stills (an image folder, one image) are separate faces: no tracking, no smoothing across them
    stills = source.stills
    frames_with_faces, last_report, timeline, tracks = 0, None, None, TrackSummary()
    with contextlib.ExitStack() as outputs:  # every output is closed however the run ends
        outputs.callback(source.close)
        pipeline = outputs.enter_context(
            Pipeline(
                model,
                threads=args.threads,
                min_score=args.min_score,
                video=not stills,
                smoothing=args.smoothing,
                allow_float=args.allow_float,
                track=not stills,
                pairs=args.pairs,
                faces=args.faces,
                uncertain=args.uncertain,
                **chosen(args),
            )
        )
        print(pipeline.describe() + (" (stills: each image on its own)" if stills else ""), flush=True)
        labels = pipeline.classifier.labels
        # appended: a service restarted by systemd keeps the lines it wrote before
        max_bytes = int(args.rotate_mb * 1e6)
        jsonl = outputs.enter_context(contextlib.closing(Appender(args.jsonl, max_bytes))) if args.jsonl else None
        table = (
            outputs.enter_context(
                contextlib.closing(FaceCsv(args.csv, labels, pairs=args.pairs is not None, max_bytes=max_bytes))
            )
            if args.csv
            else None
        )
        recorder = outputs.enter_context(contextlib.closing(Recorder(args.record))) if args.record else None
        if args.timeline and stills:
            print(
                "--timeline: images of a folder are not tracked over time; the PNG is left out (--csv has every face)",
                file=sys.stderr,
            )
        elif args.timeline:
            timeline = Timeline(labels)
        view = outputs.enter_context(contextlib.closing(start_view(args, pipeline, latency))) if args.serve else None
        window = None if args.headless else open_window(serving=bool(args.serve))
        if window:
            outputs.callback(window.close)
        try:
            for frame, _ in latency.frames_of(source, limit=args.max_frames):
                faces = pipeline.process(frame, latency)
                frames_with_faces += bool(faces)
                if stills:  # what each image shows, as it is read
                    print(still_line(frame, faces), flush=True)
                else:
                    tracks.add(frame, faces)
                if window or recorder:
                    t = time.perf_counter()
                    image = draw(frame.rgb, faces)
                    if recorder:
                        recorder.write(image)
                    if window and not window.show(image):
                        break  # the window was closed: the run ends as with Ctrl-C
                    latency.add("draw", time.perf_counter() - t)
                if view:
                    view.view.publish(frame, faces)
                if timeline:
                    timeline.add(frame.t, faces)
                if table:
                    table.write(frame, faces, still=stills)
                if jsonl:
                    line = (
                        {"frame": frame.index, "file": frame.name}
                        if stills
                        else {"t": round(frame.t, 3), "frame": frame.index}
                    )
                    jsonl.write(json.dumps(dict(line, faces=[f.to_dict() for f in faces])) + "\n")
                # the periodic table counts from the first frame, not from the model's cold start
                last_report = last_report or time.perf_counter()
                if args.report_every and time.perf_counter() - last_report > args.report_every:
                    print(Latency.table(latency.summary()), flush=True)
                    last_report = time.perf_counter()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from systemd (main() turns it into this)
            pass
    if not stills:
        print("\n".join(tracks.lines()))
    if timeline:
        timeline.save_png(args.timeline, title=f"{Path(str(args.source)).name}: {pipeline.classifier.path.name}")
        print(f"timeline: {args.timeline}")
    summary = latency.summary()
    summary["frames_with_faces"] = frames_with_faces
    summary["dropped_frames"] = getattr(source, "dropped", 0)
    return summary


def start_view(args, pipeline, latency) -> ViewServer:
    """The live view on --serve's address. Beyond loopback it needs a token (given, or made here)
    unless --no-auth says otherwise; an empty token (EDGEFER_TOKEN= in a service's environment file)
    is no token: a new one is made and the run says so."""
    host, _ = parse_address(args.serve)
    token = args.token
    if token == "":
        print("--serve: the token given (--token or $EDGEFER_TOKEN) is empty; it is ignored", file=sys.stderr)
        token = None
    if token is None and not is_loopback(host) and not args.no_auth:
        token = new_token()
    server = ViewServer(
        LiveView(pipeline.about(), pipeline.classifier.labels, latency), args.serve, token, allow_hosts=args.allow_host
    )
    print("live view: " + "  ".join(server.urls()), flush=True)
    if token is None and not is_loopback(host):
        print("--no-auth: anyone who can reach this machine can watch the camera", file=sys.stderr)
    return server


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    # systemd stops a service with SIGTERM: end like Ctrl-C, so the camera is closed and outputs kept
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = run(args)
    except EdgeferError as exc:
        print(f"edgefer-cam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the first frame: nothing to report
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(Latency.table(summary))
    print(f"faces found in {summary['frames_with_faces']} of {summary['frames']} frames")
    if args.latency_json:
        write_json(args.latency_json, summary)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
