"""Writes joined_sizes.ts: the bundled clip's first 24 frames at 320x180, then the next 24 at
192x108, each part encoded on its own (H.264 in MPEG-TS) and the two files joined byte for byte, as
`cat a.ts b.ts` joins clips without re-encoding. The picture size changes midway; OpenCV decodes
the second part at the first size. Made once with PyAV (pip install av), which the tests do not need:

    python tests/data/make_joined_video.py
"""

from pathlib import Path

import av
import cv2

HERE = Path(__file__).parent
CLIP = HERE.parents[1] / "media" / "talking_face_640x360.mp4"


def part(frames, size) -> bytes:
    path = HERE / "part.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "30", "preset": "veryslow"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for rgb in frames:
            picture = av.VideoFrame.from_ndarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), format="rgb24")
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    data = path.read_bytes()
    path.unlink()
    return data


def main():
    cap, frames = cv2.VideoCapture(str(CLIP)), []
    while len(frames) < 48:
        ok, bgr = cap.read()
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    (HERE / "joined_sizes.ts").write_bytes(part(frames[:24], (320, 180)) + part(frames[24:], (192, 108)))


if __name__ == "__main__":
    main()
