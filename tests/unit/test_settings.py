from pathlib import Path

import pytest

from vidqueue.errors import ConfigError
from vidqueue.settings import Settings


def test_defaults_work_on_a_fresh_machine():
    settings = Settings.from_env({}, env_file=None)

    assert settings.redis_url is None
    assert settings.s3_endpoint is None
    assert settings.upload_bucket == "vidqueue-uploads"
    assert settings.output_bucket == "vidqueue-videos"
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.concurrency == 1


def test_environment_wins_over_env_file(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("VIDQUEUE_API_PORT=9000\nVIDQUEUE_UPLOAD_BUCKET=from-file\n")

    settings = Settings.from_env({"VIDQUEUE_API_PORT": "9100"}, env_file=env_file)

    assert settings.api_port == 9100
    assert settings.upload_bucket == "from-file"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("VIDQUEUE_API_PORT", "eighty", "must be a number"),
        ("VIDQUEUE_AUTH_MODE", "magic", "none, apikey or jwt"),
        ("VIDQUEUE_CONCURRENCY", "0", "at least 1"),
        ("VIDQUEUE_LOG_FORMAT", "xml", "text or json"),
    ],
)
def test_malformed_values_name_the_variable(name, value, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({name: value}, env_file=None)


def test_to_env_round_trips():
    settings = Settings(redis_url="redis://x:1/0", api_port=1234, concurrency=3)

    assert Settings.from_env(settings.to_env(), env_file=None) == settings
