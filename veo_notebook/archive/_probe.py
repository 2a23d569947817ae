"""What a video file really is, read with PyAV (FFmpeg, bundled in its wheels) (private)."""

from __future__ import annotations

import os
from typing import Any, TypedDict

__all__ = ["MediaFacts", "probe"]


class MediaFacts(TypedDict):
    """The media_* fields of an archive row."""

    media_width: int
    media_height: int
    media_duration_s: float | None
    media_fps: float | None
    media_codec: str
    media_has_audio: bool


def probe(path: str | os.PathLike[str]) -> MediaFacts | None:
    """The facts of the video at ``path``, or None when it does not decode.

    "Decodes" means: a container FFmpeg can open, a video stream, every packet the
    container lists can be read, and the first frame decodes.
    """
    from ..extras import require

    av = require("av", "probing videos (archive)")
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                return None
            video = container.streams.video[0]
            if not _reads_through(container, video):
                return None
            duration: float | None = None
            if container.duration:
                duration = container.duration / av.time_base
            elif video.duration is not None and video.time_base is not None:
                duration = float(video.duration * video.time_base)
            rate = video.average_rate or video.guessed_rate
            return {
                "media_width": int(video.codec_context.width),
                "media_height": int(video.codec_context.height),
                "media_duration_s": None if duration is None else round(float(duration), 3),
                "media_fps": None if not rate else round(float(rate), 3),
                "media_codec": str(video.codec_context.name),
                "media_has_audio": bool(container.streams.audio),
            }
    except (av.FFmpegError, OSError, ValueError, IndexError, ZeroDivisionError):
        return None


def _reads_through(container: Any, video: Any) -> bool:
    decoded, packets = False, 0
    for packet in container.demux(video):
        if packet.size == 0:  # the demuxer's final flush packet
            continue
        packets += 1
        if not decoded:
            decoded = any(True for _ in packet.decode())
    if not decoded:  # a decoder with delay gives its first frame on flush
        decoded = any(True for _ in video.codec_context.decode(None))
    return decoded and not (video.frames and packets < video.frames)
