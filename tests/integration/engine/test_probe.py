"""Probing real files with the ffmpeg binary only: stream facts, exact frame counts, keyframes."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from render_service import errors
from render_service.engines.ffmpeg import audio_copy, commands, probe
from render_service.engines.ffmpeg.probe import (
    PixelsExceeded,
    ProbeError,
    adts_beside,
    inspect,
    inspect_and_scan,
    scan_packets,
)


def test_probe_describes_a_clip(media: Any, settings: Any) -> None:
    path = media.clip("pattern", seconds=2.0)
    info = probe(path, settings=settings)

    assert (info.width, info.height, info.fps) == (320, 180, 30.0)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.duration_seconds == pytest.approx(2.0, abs=0.03)
    assert info.size_bytes == path.stat().st_size


def test_packet_scan_counts_frames_and_finds_keyframes(media: Any, settings: Any) -> None:
    path = media.clip("hd-red", color="red", size="1280x720", seconds=2.0, keyint=30, preset="superfast")
    packets = scan_packets(path, settings=settings, demuxer="mov")
    keyframes = sorted(packets.seconds(p.pts) for p in packets.packets if p.key)

    assert packets.frame_count == 60
    assert packets.seconds(packets.end_pts) == pytest.approx(2.0)
    assert keyframes[:2] == pytest.approx([0.0, 1.0])


def test_garbage_and_disallowed_containers_are_refused(media: Any, settings: Any, tmp_path: Any) -> None:
    with pytest.raises(ProbeError):
        inspect(media.garbage("junk.mp4"), settings=settings)
    concat = tmp_path / "list.mp4"
    concat.write_text("ffconcat version 1.0\nfile '/etc/passwd'\n")
    with pytest.raises(ProbeError):
        inspect(concat, settings=settings)
    with pytest.raises(errors.SourceInvalid):
        probe(concat, settings=settings)


def test_packet_scan_copies_the_aac_as_adts_in_the_same_run(media: Any, settings: Any, tmp_path: Any) -> None:
    path = tmp_path / "clip.mp4"
    shutil.copyfile(media.clip("adts-src", seconds=2.0), path)
    packets = scan_packets(path, settings=settings, demuxer="mov", audio=True, adts=True)
    alone = tmp_path / "alone.aac"
    subprocess.run(
        [settings.ffmpeg, "-v", "error", "-i", str(path), "-map", "0:a:0", "-c:a", "copy", "-f", "adts", str(alone)],
        check=True,
    )

    copied = adts_beside(path).read_bytes()
    assert packets.audio is not None
    assert len(audio_copy.adts_frames(copied)) == packets.audio.count == packets.audio_packets
    assert copied == alone.read_bytes()  # the same packets a run of its own copies


def test_an_audio_copy_that_fails_never_fails_the_scan(media: Any, settings: Any, tmp_path: Any) -> None:
    path = tmp_path / "silent.mp4"
    shutil.copyfile(media.clip("adts-none", seconds=1.0, audio=False), path)
    packets = scan_packets(path, settings=settings, demuxer="mov", audio=True, adts=True)

    assert packets.frame_count == 30
    assert not adts_beside(path).exists()


def test_one_run_inspects_and_lists_as_the_two_steps_would(media: Any, settings: Any, tmp_path: Any) -> None:
    path = tmp_path / "clip.mp4"
    shutil.copyfile(media.clip("merged-src", seconds=2.0, keyint=15), path)
    formats = commands.VIDEO_FORMATS
    merged = inspect_and_scan(
        path, settings=settings, formats=formats, max_pixels=settings.max_video_pixels, start=None, duration=None,
        max_packets=None, adts=True,
    )  # fmt: skip
    assert merged is not None
    info, packets = merged
    assert info == inspect(path, settings=settings, formats=formats)
    alone = scan_packets(path, settings=settings, demuxer="mov", audio=True, h264_config=True)
    assert (packets.packets, packets.audio, packets.video_config) == (alone.packets, alone.audio, alone.video_config)
    assert adts_beside(path).exists()


def test_anything_unusual_leaves_the_two_steps_to_say_what(media: Any, settings: Any, tmp_path: Any) -> None:
    def merged(path: Any, max_pixels: int) -> Any:
        return inspect_and_scan(
            path, settings=settings, formats=commands.VIDEO_FORMATS, max_pixels=max_pixels, start=None,
            duration=None, max_packets=None, adts=True,
        )  # fmt: skip

    silent = tmp_path / "silent.mp4"
    shutil.copyfile(media.clip("merged-silent", seconds=1.0, audio=False), silent)
    assert merged(silent, settings.max_video_pixels) is None  # no audio to copy: the run fails
    big = tmp_path / "big.mp4"
    shutil.copyfile(media.clip("merged-big", seconds=1.0, size="640x360"), big)
    assert merged(big, 320 * 180) is None  # over the bound
    with pytest.raises(PixelsExceeded):
        inspect(big, settings=settings, max_pixels=320 * 180)
    assert merged(media.garbage("merged-junk.mp4"), settings.max_video_pixels) is None
    assert not any(p.name.endswith((".adts", ".h264")) for p in tmp_path.iterdir())
