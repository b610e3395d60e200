"""Parameter sets compared the way a decoder would use them: colour tags aside, every bit counts."""

from __future__ import annotations

from render_service.engines.ffmpeg.h264 import decoder_key, nal_units

# x264 High@4.0 1080p SPS, as ffmpeg wrote them for an untagged and a BT.709-tagged test pattern.
UNTAGGED = bytes.fromhex("67640028acd940780227e5c044000003000400000300f03c60c658")
BT709 = bytes.fromhex("67640028acd940780227e5c05a810102a0000003002000000781e30632c0")
PPS = bytes.fromhex("68ef8fcb")


def test_colour_tags_do_not_change_the_key_but_any_decoding_parameter_does() -> None:
    assert decoder_key([UNTAGGED, PPS]) == decoder_key([BT709, PPS]) is not None
    other_level = UNTAGGED[:3] + bytes([0x29]) + UNTAGGED[4:]  # level 4.1
    assert decoder_key([other_level, PPS]) != decoder_key([UNTAGGED, PPS])
    assert decoder_key([UNTAGGED, bytes.fromhex("68eb8fcb")]) != decoder_key([UNTAGGED, PPS])  # another PPS
    assert decoder_key([UNTAGGED]) is None  # no PPS, no key


def test_annex_b_units_are_split_on_three_and_four_byte_start_codes() -> None:
    stream = b"\x00\x00\x00\x01" + UNTAGGED + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01\x65\x88"
    assert nal_units(stream) == [UNTAGGED, PPS, b"\x65\x88"]


def test_a_truncated_sps_gives_no_key() -> None:
    assert decoder_key([UNTAGGED[:6], PPS]) is None
