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
        ("VIDQUEUE_RETRY_SECONDS", "1,soon", "comma-separated"),
    ],
)
def test_malformed_values_name_the_variable(name, value, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({name: value}, env_file=None)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"VIDQUEUE_WEBHOOKS": "maybe"}, "auto, on or off"),
        ({"VIDQUEUE_WEBHOOK_URL": "https://app.example.com/h"}, "WEBHOOK_SECRET"),
        ({"VIDQUEUE_WEBHOOKS": "on"}, "WEBHOOK_SECRET"),
        ({"VIDQUEUE_WEBHOOK_RETRY_SECONDS": "10,soon"}, "comma-separated"),
        ({"VIDQUEUE_WEBHOOK_RETRY_SECONDS": "10,-1"}, "comma-separated"),
        ({"VIDQUEUE_WEBHOOK_STAGES": "all"}, "on or off"),
        (
            {"VIDQUEUE_WEBHOOK_URL": "ftp://x/h", "VIDQUEUE_WEBHOOK_SECRET": "s"},
            "http\\(s\\) URL",
        ),
    ],
)
def test_malformed_webhook_settings_name_the_variable(env, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env, env_file=None)


def test_webhooks_are_on_with_a_url_or_when_asked():
    secret = {"VIDQUEUE_WEBHOOK_SECRET": "s"}
    url = {"VIDQUEUE_WEBHOOK_URL": "https://app.example.com/h"}

    assert not Settings.from_env(secret, env_file=None).webhooks_enabled
    assert Settings.from_env({**secret, **url}, env_file=None).webhooks_enabled
    on = Settings.from_env({**secret, "VIDQUEUE_WEBHOOKS": "on"}, env_file=None)
    assert on.webhooks_enabled
    off = {**secret, **url, "VIDQUEUE_WEBHOOKS": "off"}
    assert not Settings.from_env(off, env_file=None).webhooks_enabled


def test_webhook_retries_and_allowed_hosts_are_lists():
    settings = Settings(
        webhook_retry_seconds="0, 5,60", webhook_allow_hosts=" Hooks.local,,10.0.0.7"
    )

    assert settings.webhook_retry_intervals == (0, 5, 60)
    assert settings.webhook_allowed_hosts == {"hooks.local", "10.0.0.7"}
    assert sum(Settings().webhook_retry_intervals) / 3600 == pytest.approx(24, abs=1)


def test_job_retries_follow_the_setting():
    assert Settings().retry_intervals == (10, 60, 300)
    assert Settings(retry_seconds="0, 2,5").retry_intervals == (0, 2, 5)


def test_to_env_round_trips():
    settings = Settings(redis_url="redis://x:1/0", api_port=1234, concurrency=3)

    assert Settings.from_env(settings.to_env(), env_file=None) == settings
