// edgefer's phone page: the browser's own camera, BlazeFace and the phone form of an edgefer model
// through MediaPipe Tasks for the web, on this device's CPU. Nothing leaves the phone: the server only
// hands over this page, MediaPipe's files and the two models.
//
// Each video frame: detect faces, give the classifier each face's square as the card describes it
// (its region of interest), follow each face across frames and smooth its probabilities the way
// edgefer-cam does (tracker.py), draw boxes and labels. window.edgefer keeps every frame's faces and
// times, for tests and benchmarks: ?frames=N stops after N frames and sets window.edgefer.done.
import { FaceDetector, FilesetResolver, ImageClassifier } from "/tasks-vision/vision_bundle.mjs";

const status = document.getElementById("status");
const video = document.getElementById("video");
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const stopAfter = Number(new URLSearchParams(location.search).get("frames") || 0);
const report = (window.edgefer = { frames: [], done: false, error: null });

function fail(message) {
  status.textContent = message;
  report.error = message;
  report.done = true;
}

// a face's square as the card says: the box grown by margin each way, its centre moved offset_y
// box sides down; cut at the frame's border (MediaPipe takes regions inside the frame only)
function region(box, crop, w, h) {
  const m = Math.max(box.width, box.height);
  const side = m * (1 + 2 * crop.margin);
  const cx = box.originX + box.width / 2;
  const cy = box.originY + box.height / 2 + crop.offset_y * m;
  const x0 = Math.round(cx - side / 2), y0 = Math.round(cy - side / 2);
  const x1 = x0 + Math.round(side), y1 = y0 + Math.round(side);
  return { left: Math.max(x0, 0) / w, top: Math.max(y0, 0) / h, right: Math.min(x1, w) / w, bottom: Math.min(y1, h) / h };
}

function iou(a, b) {
  const ix = Math.max(0, Math.min(a.originX + a.width, b.originX + b.width) - Math.max(a.originX, b.originX));
  const iy = Math.max(0, Math.min(a.originY + a.height, b.originY + b.height) - Math.max(a.originY, b.originY));
  const inter = ix * iy, union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

// edgefer-cam's tracker (tracker.py): greedy matching, best overlap first; an exponential moving
// average of each face's probabilities; a face unseen for more than maxMissed frames is dropped
class Tracker {
  constructor({ smoothing, min_iou, max_missed }) {
    Object.assign(this, { smoothing, minIou: min_iou, maxMissed: max_missed, tracks: [], next: 0 });
  }
  update(boxes, probs) {
    const pairs = [];
    this.tracks.forEach((t, ti) => boxes.forEach((b, bi) => pairs.push([iou(t.box, b), ti, bi])));
    pairs.sort((p, q) => q[0] - p[0]);
    const taken = new Set(), assigned = new Map();
    for (const [overlap, ti, bi] of pairs) {
      if (overlap < this.minIou) break;
      if (taken.has(ti) || assigned.has(bi)) continue;
      taken.add(ti);
      assigned.set(bi, this.tracks[ti]);
    }
    const out = boxes.map((box, bi) => {
      let t = assigned.get(bi);
      if (!t) {
        t = { id: this.next++, box, probs: probs[bi].slice(), missed: 0 };
        this.tracks.push(t);
      } else {
        t.box = box;
        t.missed = 0;
        t.probs = t.probs.map((p, k) => this.smoothing * p + (1 - this.smoothing) * probs[bi][k]);
      }
      return t;
    });
    for (const t of this.tracks) if (!out.includes(t)) t.missed += 1;
    this.tracks = this.tracks.filter((t) => t.missed <= this.maxMissed);
    return out;
  }
}

function draw(faces, ms) {
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  ctx.lineWidth = Math.max(2, canvas.width / 320);
  ctx.font = `${Math.round(canvas.width / 28)}px system-ui, sans-serif`;
  for (const f of faces) {
    const [x, y, w, h] = f.box;
    ctx.strokeStyle = f.uncertain ? "#999" : "#4f4";
    ctx.strokeRect(x, y, w, h);
    const text = `${f.label}${f.uncertain ? "?" : ""} ${(100 * f.score).toFixed(0)}%`;
    const tw = ctx.measureText(text).width + 8, th = canvas.width / 24;
    ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
    ctx.fillRect(x, Math.max(0, y - th), tw, th);
    ctx.fillStyle = f.uncertain ? "#ccc" : "#8f8";
    ctx.fillText(text, x + 4, Math.max(th * 0.8, y - th * 0.2));
  }
  status.textContent = `${faces.length} face${faces.length === 1 ? "" : "s"} · ${ms.toFixed(1)} ms a frame`;
}

async function start() {
  const about = await (await fetch("/about.json")).json();
  const { card, device } = about;
  document.getElementById("model").textContent = about.model;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return fail("this browser gives no camera to a page that is not on https or localhost: see docs/mobile.md");
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  video.srcObject = stream;
  await video.play();
  status.textContent = "loading the models…";
  const files = await FilesetResolver.forVisionTasks("/tasks-vision/wasm");
  const detector = await FaceDetector.createFromOptions(files, {
    baseOptions: { modelAssetPath: "/face.tflite", delegate: "CPU" },
    runningMode: "VIDEO",
    minDetectionConfidence: device.min_score,
  });
  const classifier = await ImageClassifier.createFromOptions(files, {
    baseOptions: { modelAssetPath: "/model.tflite", delegate: "CPU" },
    runningMode: "IMAGE",
    maxResults: -1,
  });
  const labels = card.labels, bar = card.inference.uncertain_below || 0;
  const tracker = new Tracker(device);
  report.labels = labels;
  report.started = performance.now();

  function frame(now, meta) {
    const w = video.videoWidth, h = video.videoHeight;
    if (canvas.width !== w) [canvas.width, canvas.height] = [w, h];
    const t0 = performance.now();
    const found = detector.detectForVideo(video, t0).detections;
    const t1 = performance.now();
    const probs = found.map((d) => {
      const result = classifier.classify(video, { regionOfInterest: region(d.boundingBox, card.face_crop, w, h) });
      const scores = Object.fromEntries(result.classifications[0].categories.map((c) => [c.categoryName, c.score]));
      return labels.map((l) => scores[l] ?? 0);
    });
    const t2 = performance.now();
    const faces = tracker.update(found.map((d) => d.boundingBox), probs).map((t) => {
      const k = t.probs.indexOf(Math.max(...t.probs));
      const b = t.box;
      return { track: t.id, box: [b.originX, b.originY, b.width, b.height], label: labels[k],
               score: t.probs[k], uncertain: t.probs[k] < bar };
    });
    draw(faces, t2 - t0);
    report.frames.push({ media_time: meta.mediaTime, detect_ms: t1 - t0, classify_ms: t2 - t1, faces });
    if (stopAfter && report.frames.length >= stopAfter) {
      report.done = true;
      return;
    }
    video.requestVideoFrameCallback(frame);
  }
  status.textContent = "reading faces…";
  video.requestVideoFrameCallback(frame);
}

start().catch((e) => fail(`could not start: ${e && e.message ? e.message : e}`));
