"""Render engines. `ffmpeg` is built in; each engine turns a render request into an MP4 in S3."""
