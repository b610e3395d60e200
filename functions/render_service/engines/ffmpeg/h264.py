"""H.264 parameter sets, read far enough to tell whether two streams can share one decoder setup.

An MP4 keeps a stream's SPS and PPS once, in its sample description, and a player decodes
every sample of the track with them. Packets copied from several files into one track are
therefore decoded with the first file's parameter sets, which is right only when the others'
are the same: the same profile, level, reference frames, picture order, entropy coding,
weighted prediction, and so on. Byte equality is too strict: encoders tag colour (primaries,
transfer, matrix) in the SPS's VUI, and those tags, which never change how a picture
decodes, differ between clips an app produced alike (ffmpeg tags a test pattern BT.709 and a
solid colour not at all). `decoder_key` is the parameter sets with the colour tags left out.

The parse follows H.264 (ITU-T Rec. H.264, 7.3.2.1.1) as far as the VUI's colour fields;
everything after them is kept as bits, unparsed. Anything unexpected gives no key, and a clip
without a key is never copied next to another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

NAL_SPS, NAL_PPS = 7, 8
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class ParameterSetError(ValueError):
    """A parameter set that does not parse."""


def nal_units(annexb: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed, emulation prevention kept)."""
    units: list[bytes] = []
    starts: list[int] = []
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = annexb.find(b"\x00\x00\x01", i + 3)
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(annexb)
        unit = annexb[start:end].rstrip(b"\x00") if n + 1 < len(starts) else annexb[start:end]
        if unit:
            units.append(unit)
    return units


def rbsp(unit: bytes) -> bytes:
    """The payload of a NAL unit without its header byte and emulation prevention bytes."""
    out = bytearray()
    zeros = 0
    for byte in unit[1:]:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            if self.pos >= len(self.data) * 8:
                raise ParameterSetError("the parameter set ends early")
            value = (value << 1) | (self.data[self.pos >> 3] >> (7 - (self.pos & 7)) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ParameterSetError("an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)

    def bits(self, start: int, end: int) -> str:
        return "".join(str(self.data[p >> 3] >> (7 - (p & 7)) & 1) for p in range(start, end))


def _scaling_list(bits: _Bits, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def sps_without_colour(payload: bytes) -> str:
    """An SPS's bits with the VUI's video signal type (colour and range tags) cut out."""
    bits = _Bits(payload)
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            bits.u(1)
        bits.ue()
        bits.ue()
        bits.u(1)
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma == 3 else 8):
                if bits.u(1):
                    _scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc = bits.ue()
    if poc == 0:
        bits.ue()
    elif poc == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(min(bits.ue(), 255)):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)
    bits.ue()  # width, height in macroblocks
    bits.ue()
    if not bits.u(1):  # frame_mbs_only_flag
        bits.u(1)
    bits.u(1)
    if bits.u(1):  # frame_cropping_flag
        for _ in range(4):
            bits.ue()
    end = len(payload) * 8
    if not bits.u(1):  # vui_parameters_present_flag
        return bits.bits(0, end).rstrip("0")
    if bits.u(1) and bits.u(8) == 255:  # aspect_ratio_info_present_flag, aspect_ratio_idc
        bits.u(32)
    if bits.u(1):  # overscan_info_present_flag
        bits.u(1)
    start = bits.pos
    if bits.u(1):  # video_signal_type_present_flag
        bits.u(4)  # video_format, video_full_range_flag
        if bits.u(1):  # colour_description_present_flag
            bits.u(24)
    # Without the trailing alignment zeros, which the cut changes.
    return (bits.bits(0, start) + bits.bits(bits.pos, end)).rstrip("0")


def decoder_key(units: Sequence[bytes]) -> str | None:
    """A digest of the SPS (colour tags left out) and PPS in `units`, or None without both."""
    sps = [u for u in units if u and u[0] & 0x1F == NAL_SPS]
    pps = [u for u in units if u and u[0] & 0x1F == NAL_PPS]
    if not sps or not pps:
        return None
    digest = hashlib.sha256()
    try:
        for unit in sps:
            digest.update(b"S" + sps_without_colour(rbsp(unit)).encode())
    except ParameterSetError:
        return None
    for unit in pps:
        digest.update(b"P" + unit)
    return digest.hexdigest()[:32]
