"""Encoding profiles: what a job produces from its source.

Three come built in:

- `default`: the original system's MP4 (30 fps, H.264 CRF 23 preset fast,
  AAC, `+faststart`) and a poster image;
- `hls`: an HLS ladder (1080p, 720p, 480p, 360p; never above the source's
  height) with a master playlist, and a poster image;
- `mp4`: the MP4 alone.

More can be defined, or these changed, in a TOML file named by
`VIDQUEUE_PROFILES_FILE`::

    [profiles.small]
    mp4 = true
    poster = false
    max_height = 480

    [profiles.ladder]
    poster = true
    hls = [
      {name = "720p", height = 720, video_kbps = 2800},
      {name = "360p", height = 360, video_kbps = 800},
    ]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from vidqueue.errors import ConfigError, InvalidRequest


@dataclass(frozen=True)
class Rendition:
    """One rung of an HLS ladder."""

    name: str
    height: int
    video_kbps: int
    audio_kbps: int = 128


@dataclass(frozen=True)
class Profile:
    """The outputs of a job: an MP4, an HLS ladder, a poster, or several."""

    name: str
    mp4: bool = True
    poster: bool = True
    hls: tuple[Rendition, ...] = ()
    max_height: int | None = None
    """The MP4 is scaled down to this height when the source is taller."""
    fps: int = 30
    crf: int = 23
    preset: str = "fast"

    def ladder_for(self, source_height: int) -> list[Rendition]:
        """The renditions worth making from a source: never upscaled.

        A source smaller than every rung still gets one rendition, at its own
        height.
        """
        rungs = [r for r in self.hls if r.height <= source_height]
        if self.hls and not rungs:
            smallest = min(self.hls, key=lambda r: r.height)
            even = source_height - source_height % 2
            rungs = [Rendition(f"{even}p", even, smallest.video_kbps)]
        return sorted(rungs, key=lambda r: r.height, reverse=True)


STANDARD_LADDER = (
    Rendition("1080p", 1080, 5000, 192),
    Rendition("720p", 720, 2800, 128),
    Rendition("480p", 480, 1400, 128),
    Rendition("360p", 360, 800, 96),
)

BUILTIN_PROFILES = {
    "default": Profile("default"),
    "hls": Profile("hls", mp4=False, hls=STANDARD_LADDER),
    "mp4": Profile("mp4", poster=False),
}


@dataclass
class Profiles:
    """The profiles a deployment offers, by name."""

    by_name: dict[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))

    @classmethod
    def load(cls, path: str | Path | None) -> Profiles:
        """The built-in profiles, plus those of the TOML file at `path`."""
        profiles = cls()
        if not path:
            return profiles
        try:
            document = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the profiles file {path}: {exc}") from None
        for name, table in document.get("profiles", {}).items():
            profiles.by_name[name] = _profile_from_table(name, table)
        return profiles

    def get(self, name: str | None) -> Profile:
        """The profile called `name` (the default one for None or empty)."""
        profile = self.by_name.get(name or "default")
        if profile is None:
            known = ", ".join(sorted(self.by_name))
            raise InvalidRequest(f"unknown profile {name!r}; choose one of: {known}")
        return profile


def _profile_from_table(name: str, table: dict) -> Profile:
    try:
        ladder = tuple(Rendition(**rung) for rung in table.pop("hls", ()))
        profile = Profile(name=name, hls=ladder, **table)
    except TypeError as exc:
        raise ConfigError(f"profile {name!r} is malformed: {exc}") from None
    if not (profile.mp4 or profile.hls or profile.poster):
        raise ConfigError(f"profile {name!r} produces nothing")
    return profile
