"""The picture size a video's own bitstream declares, packet by packet (H.264 and HEVC sequence
parameter sets), read without decoding.

OpenCV decodes a stream whose size changes midway (clips of two sizes joined without re-encoding,
e.g. `cat a.ts b.ts`) at its first size and pastes the new pictures into a corner of the old
ones, with nothing in its properties to tell. The stream itself says so: each part starts with a
parameter set that names its size. `DeclaredSizes` reads the video's packets beside the decoder
(OpenCV's FFmpeg back end hands them over undecoded with CAP_PROP_FORMAT -1) and gives the size a
packet declares, where it declares one.
"""

from __future__ import annotations

import cv2

H264 = ("h264", "avc1", "x264", "davc")
HEVC = ("hevc", "hev1", "hvc1", "h265")


class DeclaredSizes:
    """sizes = DeclaredSizes("clip.ts"); sizes.next(): the size the next packet declares, None where
    it declares none; sizes.first: the first size declared. Where the codec is not H.264 or HEVC,
    or the back end cannot hand packets over, every answer is None and nothing is read."""

    def __init__(self, path):
        self.cap, self.first, self._extradata = None, None, True
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0).to_bytes(4, "little").decode("latin-1").lower()
        self.codec = "h264" if fourcc in H264 else "hevc" if fourcc in HEVC else None
        if cap.isOpened() and self.codec and cap.get(cv2.CAP_PROP_FORMAT) == -1:
            self.cap = cap
        else:
            cap.release()

    def next(self) -> tuple[int, int] | None:
        if self.cap is None or not self.cap.grab():
            self.close()
            return None
        if self._extradata:  # MP4 keeps the first parameter set outside the packets
            self._extradata, index = False, int(self.cap.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX) or 0)
            ok, data = self.cap.retrieve(flag=index) if index > 0 else (False, None)
            self.first = declared_size(data.tobytes(), self.codec) if ok and data is not None else None
        ok, packet = self.cap.retrieve()
        size = declared_size(packet.tobytes(), self.codec) if ok and packet is not None else None
        self.first = self.first or size
        return size

    def close(self):
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def declared_size(data: bytes, codec: str) -> tuple[int, int] | None:
    """The (width, height) of the first sequence parameter set in `data`: Annex B NAL units (start
    codes), or an avcC record (MP4's H.264 extradata); None where there is none."""
    if codec == "h264" and data[:1] == b"\x01" and len(data) > 8:  # avcC: SPS count, then length + SPS
        if data[5] & 0x1F:
            n = int.from_bytes(data[6:8], "big")
            return _size_or_none(_h264_sps, data[8 : 8 + n])
        return None
    for nal in _nal_units(data):
        if codec == "h264" and nal and nal[0] & 0x1F == 7:
            return _size_or_none(_h264_sps, nal)
        if codec == "hevc" and len(nal) > 2 and (nal[0] >> 1) & 0x3F == 33:
            return _size_or_none(_hevc_sps, nal)
    return None


def _nal_units(data: bytes):
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        end = data.find(b"\x00\x00\x01", start + 3)
        yield data[start + 3 : end if end >= 0 else len(data)]
        start = end


def _size_or_none(parse, nal: bytes):
    try:
        return parse(_Bits(nal.replace(b"\x00\x00\x03", b"\x00\x00")))  # emulation prevention bytes out
    except IndexError:  # a parameter set cut short: it declares nothing this can read
        return None


class _Bits:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:  # Exp-Golomb
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("not an Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _cropped(width, height, chroma, crop, frame_height_unit=1):
    """Size after the conformance window: (left, right, top, bottom) in chroma sample units."""
    sub_w, sub_h = (1, 1) if chroma in (0, 3) else (2, 2) if chroma == 1 else (2, 1)
    left, right, top, bottom = crop
    return width - sub_w * (left + right), height - sub_h * frame_height_unit * (top + bottom)


def _h264_sps(b: _Bits) -> tuple[int, int]:
    """ITU-T H.264 7.3.2.1.1, up to the frame cropping fields."""
    b.u(8)  # the NAL unit header
    profile = b.u(8)
    b.u(16)  # constraint flags, level
    b.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = b.ue()
        if chroma == 3:
            b.u(1)
        b.ue(), b.ue(), b.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if b.u(1):  # scaling matrices
            for i in range(8 if chroma != 3 else 12):
                if b.u(1):
                    last = following = 8
                    for _ in range(16 if i < 6 else 64):
                        if following:
                            following = (last + b.se() + 256) % 256
                        last = following or last
    b.ue()  # log2_max_frame_num_minus4
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1), b.se(), b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue(), b.u(1)  # max_num_ref_frames, gaps_in_frame_num_allowed
    width_mbs, height_units = b.ue() + 1, b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)
    b.u(1)  # direct_8x8_inference
    crop = (b.ue(), b.ue(), b.ue(), b.ue()) if b.u(1) else (0, 0, 0, 0)
    unit = 2 - frame_mbs_only  # field pictures: crop rows count twice
    return _cropped(width_mbs * 16, height_units * 16 * unit, chroma, crop, unit)


def _hevc_sps(b: _Bits) -> tuple[int, int]:
    """ITU-T H.265 7.3.2.2.1, up to the conformance window."""
    b.u(16)  # the NAL unit header
    b.u(4)  # sps_video_parameter_set_id
    sub_layers = b.u(3)
    b.u(1)
    b.u(88), b.u(8)  # general profile, tier, flags; general level
    present = [(b.u(1), b.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        b.u(2 * (8 - sub_layers))
    for profile, level in present:
        b.u(88 * profile + 8 * level)
    b.ue()  # sps_seq_parameter_set_id
    chroma = b.ue()
    if chroma == 3:
        b.u(1)
    width, height = b.ue(), b.ue()
    crop = (b.ue(), b.ue(), b.ue(), b.ue()) if b.u(1) else (0, 0, 0, 0)
    return _cropped(width, height, chroma, crop)
