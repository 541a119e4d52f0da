import pytest

from vidqueue.keys import job_id_from_upload_key, safe_name, upload_key
from vidqueue.records import looks_like_job_id, new_job_id


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("holiday.mp4", "holiday.mp4"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("vidéo été.mov", "video-ete.mov"),
        ("a/b/../c d+e%20f.mp4", "c-d-e-20f.mp4"),
        ("....", "video"),
        ("", "video"),
        ("\x00\x1b[31mred.mp4", "31mred.mp4"),
    ],
)
def test_safe_name_never_leaves_its_folder(filename, expected):
    assert safe_name(filename) == expected


def test_upload_key_holds_user_and_job():
    job_id = new_job_id()

    key = upload_key("alice", job_id, "../x/../../clip.mp4")

    assert key == f"u/alice/{job_id}/clip.mp4"
    assert job_id_from_upload_key(key) == job_id


@pytest.mark.parametrize("key", ["inbox/a.mp4", "u/alice/notanid/a.mp4", "u/a/b"])
def test_other_keys_have_no_job(key):
    assert job_id_from_upload_key(key) is None


def test_job_ids_are_unique_sortable_and_well_formed():
    first = new_job_id(now_ms=1_700_000_000_000)
    later = new_job_id(now_ms=1_700_000_000_001)
    many = {new_job_id() for _ in range(1000)}

    assert first < later
    assert len(many) == 1000
    assert all(looks_like_job_id(job_id) for job_id in many)
    assert not looks_like_job_id("01M8Y9EDP76MDE3TSGR6HTM7T")
    assert not looks_like_job_id("01M8Y9EDP76MDE3TSGR6HTM7TU")
