import pytest

from processor.probe import check_media, protocols_for
from processor.transcode import parse_progress_line
from vidqueue.errors import BadInput


def report(*streams, duration="10.0", format_name="mov,mp4,m4a,3gp,3g2,mj2"):
    return {
        "streams": list(streams),
        "format": {"duration": duration, "format_name": format_name},
    }


VIDEO = {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720}
AUDIO = {"codec_type": "audio", "codec_name": "aac"}


def test_a_video_with_sound_is_accepted():
    info = check_media(report(VIDEO, AUDIO), max_duration_s=60)

    assert (info.width, info.height, info.duration) == (1280, 720, 10.0)
    assert info.has_audio
    assert info.demuxer == "mov"


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        (report(), "not a video"),
        (report(AUDIO), "no video stream"),
        (
            report({**VIDEO, "disposition": {"attached_pic": 1}}, AUDIO),
            "no video stream",
        ),
        (report({**VIDEO, "width": 0}), "no video stream"),
        (report({**VIDEO, "width": 100_000, "height": 100_000}), "video too large"),
        (report(VIDEO, duration="7200"), "video too long"),
        (report(VIDEO, duration="N/A"), "no playable duration"),
    ],
)
def test_unacceptable_media_is_refused_with_a_reason(media, reason):
    with pytest.raises(BadInput, match=reason):
        check_media(media, max_duration_s=3600)


def test_remote_sources_may_open_no_local_file():
    assert "file" not in protocols_for("https://storage.example/x.mp4").split(",")
    assert protocols_for("/tmp/x.mp4") == "file"


@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        ("out_time_us=1500000\n", 1.5),
        ("out_time_ms=2000000", 2.0),
        ("out_time_us=N/A", None),
        ("out_time_us=-5000", 0.0),
        ("frame=12", None),
        ("progress=end", None),
    ],
)
def test_progress_lines(line, seconds):
    assert parse_progress_line(line) == seconds
