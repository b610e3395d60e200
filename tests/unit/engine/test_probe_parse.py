"""Reading `ffmpeg -i` and `-f framecrc` output (the Lambda layer has no ffprobe)."""

# ruff: noqa: E501 - real ffmpeg output lines are long

from __future__ import annotations

from fractions import Fraction

import pytest

from render_service.engines.ffmpeg.probe import ProbeError, parse_packets, parse_probe

PHONE = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'src-0.mov':
  Metadata:
    creation_time   : 2024-05-01T10:00:00.000000Z
  Duration: 00:01:02.53, start: 0.000000, bitrate: 15960 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080, 15838 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 96 kb/s (default)
At least one output file must be specified
"""

MUSIC = """\
Input #0, mp3, from 'song.mp3':
  Duration: 00:03:10.00, start: 0.025057, bitrate: 320 kb/s
  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 320 kb/s
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 500x500 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
"""

IMAGE = """\
Input #0, png_pipe, from 'still.png':
  Duration: N/A, bitrate: N/A
  Stream #0:0: Video: png, rgb24(pc, gbr/unknown/unknown), 640x480 [SAR 2835:2835 DAR 4:3], 25 fps, 25 tbr, 25 tbn
"""


def test_a_phone_video_with_rotation() -> None:
    info = parse_probe(PHONE)

    assert info.demuxer == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.duration_seconds == pytest.approx(62.53)
    assert info.video is not None
    assert (info.video.codec, info.video.profile, info.video.pix_fmt) == ("h264", "High", "yuv420p")
    assert (info.video.width, info.video.height, info.video.fps) == (1920, 1080, 29.97)
    assert info.video.rotation == -90.0
    assert info.video.sar is None
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 44100, "mono")


def test_cover_art_is_not_a_video_stream() -> None:
    info = parse_probe(MUSIC)

    assert info.video is None
    assert info.audio is not None
    assert info.start_seconds == pytest.approx(0.025057)


def test_a_still_image() -> None:
    info = parse_probe(IMAGE)

    assert info.demuxer == "png_pipe"
    assert info.duration_seconds is None
    assert info.video is not None
    assert info.video.sar == Fraction(1)
    assert (info.video.width, info.video.height) == (640, 480)


def test_unreadable_input_raises_with_ffmpeg_reason() -> None:
    with pytest.raises(ProbeError, match="Invalid data found"):
        parse_probe("[in#0 @ 0x5581] Error opening input: Invalid data found when processing input\n")


def test_packets_keyframes_and_time_base() -> None:
    text = """\
#tb 0: 1/15360
#media_type 0: video
0,      -1024,          0,      512,     4391, 0xf0cb2a16
0,       -512,       1024,      512,     1789, 0x23c982d8, F=0x0
0,          0,        512,      512,      881, 0x267cc057, F=0x0
0,        512,       1536,      512,      625, 0xcb532906, F=0x1
0,       1024,   NOPTS,      512,      625, 0xcb532906, F=0x0
"""
    packets = parse_packets(text)

    assert packets.time_base == Fraction(1, 15360)
    assert [p.key for p in packets.packets] == [True, False, False, True]
    assert packets.frame_count == 4
    assert packets.end_pts == 2048
