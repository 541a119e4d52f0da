"""Redis behind Sentinel: vidqueue follows the primary through a failover."""

from __future__ import annotations

import subprocess
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError

from vidqueue import services
from vidqueue.context import connect_redis
from vidqueue.records import JobRecord, RecordStore, new_job_id

pytestmark = pytest.mark.integration


def start_sentinel(folder, primary_port: int) -> subprocess.Popen:
    port = services.free_port()
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor main 127.0.0.1 {primary_port} 1\n"
        "sentinel down-after-milliseconds main 1000\n"
        "sentinel failover-timeout main 5000\n"
    )
    process = subprocess.Popen(
        ["redis-server", str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    process.port = port
    return process


def close(*clients) -> None:
    for client in clients:
        if client is None:
            continue
        manager = getattr(client.connection_pool, "sentinel_manager", None)
        for watcher in getattr(manager, "sentinels", []):
            watcher.close()
        client.close()


def test_records_survive_a_failover(tmp_path):
    redis = direct = None
    primary = services.start_redis(tmp_path / "primary", aof=True)
    replica = services.start_redis(tmp_path / "replica", aof=True)
    sentinel = start_sentinel(tmp_path / "sentinel", primary.port)
    try:
        direct = connect_redis(replica.url)
        direct.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/main/0"
        redis = None
        deadline = time.monotonic() + 20
        while redis is None:
            try:
                redis = connect_redis(url)
                redis.ping()
            except RedisConnectionError:
                redis = None
                assert time.monotonic() < deadline, "sentinel never answered"
                time.sleep(0.2)
        store = RecordStore(redis)
        before = JobRecord(id=new_job_id(), user_id="u1")
        store.create(before)
        deadline = time.monotonic() + 20
        while not direct.exists(f"vidqueue:job:{before.id}"):
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.1)

        # Sentinel learns of replicas from the primary's INFO, every 10 s:
        # until it knows one, it has nothing to promote.
        watcher = connect_redis(f"redis://127.0.0.1:{sentinel.port}/0")
        deadline = time.monotonic() + 30
        while not watcher.execute_command("SENTINEL", "REPLICAS", "main"):
            assert time.monotonic() < deadline, "sentinel never saw the replica"
            time.sleep(0.2)
        watcher.close()

        primary.stop()
        after = JobRecord(id=new_job_id(), user_id="u1")
        deadline = time.monotonic() + 60
        while True:
            try:
                store.create(after)
                break
            except (RedisConnectionError, ReadOnlyError):
                assert time.monotonic() < deadline, "no failover"
                time.sleep(0.3)

        assert store.get(before.id).user_id == "u1"
        assert store.get(after.id).state == "uploading"
        assert direct.info("replication")["role"] == "master"
    finally:
        close(redis, direct)
        sentinel.terminate()
        sentinel.wait()
        replica.stop()
        primary.stop()


def test_a_sentinel_url_must_name_its_service():
    from vidqueue.errors import ConfigError

    with pytest.raises(ConfigError, match="names the service"):
        connect_redis("redis+sentinel://127.0.0.1:26379")
