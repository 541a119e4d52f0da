import pytest

from processor.probe import (
    check_media,
    input_options,
    network_trouble,
    protocols_for,
    source_read_failed,
)
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


def test_remote_sources_are_read_with_reconnects():
    assert input_options("https://storage.example/x.mp4")["reconnect"] == "1"
    assert "reconnect" not in input_options("/tmp/x.mp4")


# ffprobe's log (warning level) when storage answered a seek with 503: the
# file looks broken, but storage was at fault.
LOG_AFTER_503 = """\
[http @ 0x55d1] HTTP error 503 Slow Down
[http @ 0x55d1] Will reconnect at 194501 in 0 second(s).
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55c0] moov atom not found
input: Invalid data found when processing input"""
LOG_OF_A_BAD_FILE = """\
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55c0] moov atom not found
input: Invalid data found when processing input"""
LOG_RECOVERED = """\
[http @ 0x55d1] Will reconnect at 2048 in 0 second(s), error=Connection reset by peer.
[http @ 0x55d1] Stream ends prematurely at 131120, should be 194669"""
LOG_CUT_SHORT = """\
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55c0] stream 1, offset 0x186d6: partial file
input: Connection reset by peer"""


@pytest.mark.parametrize(
    ("log", "trouble", "failed"),
    [
        (LOG_AFTER_503, True, False),
        (LOG_OF_A_BAD_FILE, False, False),
        (LOG_RECOVERED, True, False),
        (LOG_CUT_SHORT, True, True),
    ],
)
def test_logs_tell_storage_faults_from_bad_files(log, trouble, failed):
    assert network_trouble(log) is trouble
    assert source_read_failed(log.splitlines()) is failed


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
