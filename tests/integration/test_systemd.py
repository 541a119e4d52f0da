"""scripts/install-vps.sh and the files of infra/systemd, as a machine gets them.

The script runs with `--root` into a temporary folder, which writes every file
a real installation writes (user database, units, drop-ins, enable links, env
file, Redis configuration) without touching this machine. The tests read what
landed there, check it with `systemd-analyze verify`, and run redis-server on
the Redis configuration.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis
from dotenv import dotenv_values

from vidqueue import services
from vidqueue.settings import PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install-vps.sh"
UNIT_DIR = Path("etc/systemd/system")
SERVICES = (
    "vidqueue-api.service",
    "vidqueue-poller.service",
    "vidqueue-worker@.service",
    "vidqueue-webhooks.service",
)
SLOTS = 3

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("systemctl") and shutil.which("systemd-sysusers")),
        reason="install-vps.sh needs systemctl and systemd-sysusers (systemd)",
    ),
]

# What the redis-server package installs: the template the script enables.
REDIS_TEMPLATE = """\
[Service]
ExecStart=/usr/bin/redis-server /etc/redis/redis-%i.conf --supervised systemd
[Install]
WantedBy=multi-user.target
"""


def install(root: Path, *args: str, concurrency: int | str | None = SLOTS):
    """Run install-vps.sh into `root`; returns the finished process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    if concurrency is not None:
        env["VIDQUEUE_CONCURRENCY"] = str(concurrency)
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A machine's root folder after a first installation with three slots."""
    root = tmp_path / "root"
    template = root / "lib/systemd/system/redis-server@.service"
    template.parent.mkdir(parents=True)
    template.write_text(REDIS_TEMPLATE)
    done = install(root)
    assert done.returncode == 0, done.stderr
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with its type, mode and content or link target."""
    tree = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            detail = str(path.readlink())
        elif path.is_file():
            detail = path.read_bytes()
        else:
            detail = None
        tree[str(path.relative_to(root))] = (stat.filemode(info.st_mode), detail)
    return tree


def read_unit(root: Path, name: str) -> dict[str, dict[str, str]]:
    """A unit's settings as systemd merges them: the file, then its drop-ins."""
    unit_dir = root / UNIT_DIR
    files = [unit_dir / name, *sorted((unit_dir / f"{name}.d").glob("*.conf"))]
    sections: dict[str, dict[str, str]] = {}
    for file in files:
        section = None
        for raw in file.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = sections.setdefault(line.strip("[]"), {})
                continue
            key, _, value = line.partition("=")
            section[key.strip()] = value.strip()
    return sections


def enabled(root: Path, target: str) -> set[str]:
    """Units enabled into `target` (the links `systemctl enable` makes)."""
    wants = root / UNIT_DIR / f"{target}.wants"
    return {path.name for path in wants.iterdir()} if wants.is_dir() else set()


def env_file(root: Path) -> dict[str, str]:
    return dotenv_values(root / "etc/vidqueue/vidqueue.env")


def test_install_creates_the_user_units_and_worker_slots(root):
    [account] = [
        line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
        if line.startswith("vidqueue:")
    ]
    assert account[5] == "/var/lib/vidqueue"
    assert account[6] == "/usr/sbin/nologin"

    assert enabled(root, "multi-user.target") == {
        "vidqueue.target",
        "redis-server@vidqueue.service",
    }
    workers = {f"vidqueue-worker@{slot}.service" for slot in range(1, SLOTS + 1)}
    assert enabled(root, "vidqueue.target") == {
        "vidqueue-api.service",
        "vidqueue-poller.service",
        "vidqueue-webhooks.service",
        *workers,
    }


def test_env_file_is_private_complete_and_readable_by_vidqueue(root):
    path = root / "etc/vidqueue/vidqueue.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = env_file(root)
    assert [name for name, value in values.items() if "CHANGE-ME" in value] == []
    fields = set(Settings.__dataclass_fields__)
    unknown = [n for n in values if n.removeprefix(PREFIX).lower() not in fields]
    assert unknown == [], "names vidqueue would ignore"

    settings = Settings.from_env(environ=values, env_file=None)
    assert settings.concurrency == SLOTS
    assert settings.auth_mode == "apikey"
    assert len(settings.hook_secret) >= 32

    redis_conf_path = root / "etc/redis/redis-vidqueue.conf"
    assert stat.S_IMODE(redis_conf_path.stat().st_mode) == 0o640
    redis_conf = redis_conf_path.read_text()
    password = redis.connection.parse_url(settings.redis_url)["password"]
    assert f"\nrequirepass {password}\n" in redis_conf


def test_installing_again_changes_nothing(root):
    before = snapshot(root)

    done = install(root, concurrency=None)

    assert done.returncode == 0, done.stderr
    assert snapshot(root) == before


def test_fewer_slots_and_roles_leave_exactly_those_enabled(root):
    secrets_before = env_file(root)

    done = install(root, "--roles", "worker", concurrency=1)

    assert done.returncode == 0, done.stderr
    assert enabled(root, "vidqueue.target") == {"vidqueue-worker@1.service"}
    values = env_file(root)
    assert values["VIDQUEUE_CONCURRENCY"] == "1"
    assert values["VIDQUEUE_HOOK_SECRET"] == secrets_before["VIDQUEUE_HOOK_SECRET"]
    assert values["VIDQUEUE_REDIS_URL"] == secrets_before["VIDQUEUE_REDIS_URL"]


def test_a_bad_concurrency_is_refused(tmp_path):
    done = install(tmp_path / "root", concurrency="two")

    assert done.returncode != 0
    assert "VIDQUEUE_CONCURRENCY" in done.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_hardened_as_vidqueue_and_restart(root, name):
    unit = read_unit(root, name)
    service = unit["Service"]

    assert service["User"] == service["Group"] == "vidqueue"
    assert service["EnvironmentFile"] == "/etc/vidqueue/vidqueue.env"
    assert service["Restart"] == "always"
    assert int(service["RestartSec"]) > 0
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }
    assert {key: service.get(key) for key in hardening} == hardening
    # ProtectSystem=strict: the only writable places are the ones systemd makes.
    assert service["StateDirectory"] == "vidqueue"
    assert "ReadWritePaths" not in service

    assert unit["Unit"]["PartOf"] == "vidqueue.target"
    assert unit["Install"]["WantedBy"] == "vidqueue.target"


def test_webhook_deliveries_run_on_their_own_queue(root):
    service = read_unit(root, "vidqueue-webhooks.service")["Service"]

    command = service["ExecStart"].split()
    assert command[-3:] == ["worker", "--queue", "webhooks"]
    assert "VIDQUEUE_CONCURRENCY=1" in command
    assert service["KillMode"] == "mixed"
    assert "link-local" in service["IPAddressDeny"].split()


def test_worker_slots_run_one_job_each_within_limits(root):
    service = read_unit(root, "vidqueue-worker@.service")["Service"]

    assert "VIDQUEUE_CONCURRENCY=1" in service["ExecStart"].split()
    assert service["ExecStart"].endswith("/opt/vidqueue/venv/bin/vidqueue worker")
    # Warm shutdown: SIGTERM only to RQ's main process, time for the job to end.
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"].endswith("min")
    # Scratch space on disk, per slot, emptied before each start.
    assert service["CacheDirectory"] == "vidqueue/worker-%i"
    assert service["Environment"] == "TMPDIR=%C/vidqueue/worker-%i"
    assert service["ExecStartPre"].split()[1] == "%C/vidqueue/worker-%i"

    # The drop-in shares the machine among the slots without overcommitting.
    cpu_percent = int(service["CPUQuota"].removesuffix("%"))
    memory_mib = int(service["MemoryMax"].removesuffix("M"))
    assert 0 < cpu_percent * SLOTS <= 100 * os.cpu_count()
    total_kib = int(Path("/proc/meminfo").read_text().split()[1])
    assert 0 < memory_mib * SLOTS <= total_kib // 1024


def test_units_pass_systemd_analyze_verify(root, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart= binaries exist: point them at a stand-in.
    binary = tmp_path / "venv/bin/vidqueue"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    units = tmp_path / "units"
    shutil.copytree(root / UNIT_DIR, units, ignore=shutil.ignore_patterns("*.wants"))
    for path in units.glob("*.service"):
        text = path.read_text().replace("/opt/vidqueue/venv/bin/vidqueue", str(binary))
        path.write_text(text)

    names = [
        "vidqueue.target",
        "vidqueue-api.service",
        "vidqueue-poller.service",
        "vidqueue-worker@1.service",
        f"vidqueue-worker@{SLOTS}.service",
        "vidqueue-webhooks.service",
    ]
    done = subprocess.run(
        [analyze, "verify", *(str(units / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == "", "systemd-analyze verify warns"


def test_redis_config_gives_a_durable_password_protected_queue(root, tmp_path):
    conf = root / "etc/redis/redis-vidqueue.conf"
    password = redis.connection.parse_url(env_file(root)["VIDQUEUE_REDIS_URL"])[
        "password"
    ]
    port = services.free_port()
    # Only what belongs to this machine changes: port, folders, no pid file.
    args = [
        "redis-server", str(conf), "--port", str(port), "--dir", str(tmp_path),
        "--pidfile", "", "--daemonize", "no", "--supervised", "no",
    ]  # fmt: skip
    log = tmp_path / "redis.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, password=password)
    try:
        wait_for_redis(client, process, log)

        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        policy = client.config_get("maxmemory-policy")
        assert policy == {"maxmemory-policy": "noeviction"}
        assert set(client.config_get("bind")["bind"].split()) <= {"127.0.0.1", "-::1"}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def wait_for_redis(client: redis.Redis, process: subprocess.Popen, log: Path) -> None:
    """Return once redis-server answers; fail with its log if it exits."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"redis-server exited:\n{log.read_text()}")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    pytest.fail("redis-server did not answer")
