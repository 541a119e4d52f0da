"""The migrations of the durable record, on a real Postgres: table, order, RLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.database import fresh_database
from vidqueue.migrate import COMPAT_FILE, MIGRATIONS_DIR, load_migrations, migrate

pytestmark = pytest.mark.integration

USER_A = "0d4c5f7e-53c2-4a49-9a4f-3b0f1c1d7a01"
USER_B = "7b2e9a10-8f3d-4c6e-b5a2-9e8d7c6b5a02"


@pytest.fixture
def database_url(postgres_server) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A migrated database, connected as its owner (no autocommit)."""
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        yield conn


def insert_job(conn: psycopg.Connection, job_id: str, user_id: str, **values) -> None:
    row = {"id": job_id, "user_id": user_id, "state": "waiting", **values}
    statement = sql.SQL("insert into videos ({}) values ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )
    conn.execute(statement, list(row.values()))
    conn.commit()


def act_as(conn: psycopg.Connection, role: str, user_id: str | None = None) -> None:
    """Switch to `role` with the JWT claims that PostgREST would set for it."""
    claims = {"role": role} | ({"sub": user_id} if user_id else {})
    conn.execute(f"set role {role}")
    conn.execute(
        "select set_config('request.jwt.claims', %s, false)", (json.dumps(claims),)
    )


def visible_ids(conn: psycopg.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select id from videos")}


def test_migrations_apply_twice_cleanly(database_url):
    names = [m.name for m in load_migrations()]

    assert migrate(database_url) == names
    assert migrate(database_url) == []

    # The files themselves are idempotent too, run again by hand in order.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(COMPAT_FILE.read_text())
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            conn.execute(path.read_text())
        recorded = conn.execute(
            "select name from vidqueue.schema_migrations order by name"
        ).fetchall()
    assert [name for (name,) in recorded] == names


def test_vidqueue_migrate_command(database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDQUEUE_")}
    env["VIDQUEUE_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "vidqueue.cli", "migrate"]

    first = subprocess.run(command, env=env, capture_output=True, text=True)
    again = subprocess.run(command, env=env, capture_output=True, text=True)

    assert first.returncode == 0, first.stderr
    assert f"applied {len(load_migrations())} migrations" in first.stdout
    assert "0003_videos_row_security" in first.stdout
    assert again.returncode == 0, again.stderr
    assert "applied 0 migrations" in again.stdout


def test_supabase_auth_schema_is_left_alone(database_url):
    # A Supabase database has its own auth schema (with auth.users).
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(COMPAT_FILE.read_text())
        conn.execute("comment on schema auth is 'Supabase auth'")
        conn.execute("create table auth.users (id uuid primary key)")

    migrate(database_url)

    with psycopg.connect(database_url) as conn:
        (comment,) = conn.execute(
            "select obj_description('auth'::regnamespace, 'pg_namespace')"
        ).fetchone()
    assert comment == "Supabase auth"


def test_table_refuses_values_outside_the_record(db):
    insert_job(db, "job-ok", USER_A, progress=100, result=Jsonb({"width": 640}))

    with pytest.raises(psycopg.errors.CheckViolation):
        insert_job(db, "job-too-far", USER_A, progress=101)
    db.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):
        insert_job(db, "job-odd-state", USER_A, state="paused")
    db.rollback()

    row = db.execute("select progress, result from videos").fetchall()
    assert row == [(100, {"width": 640})]


def test_an_older_version_never_overwrites_a_newer_row(db):
    insert_job(db, "job-1", USER_A, state="completed", progress=100, version=7)

    # What PostgREST sends for Prefer: resolution=merge-duplicates.
    act_as(db, "service_role")
    db.execute(
        "insert into videos (id, user_id, state, progress, version)"
        " values ('job-1', %s, 'active', 40, 5)"
        " on conflict (id) do update set state = excluded.state,"
        " progress = excluded.progress, version = excluded.version",
        (USER_A,),
    )
    db.commit()
    assert db.execute("select state, progress, version from videos").fetchone() == (
        "completed",
        100,
        7,
    )

    db.execute("update videos set state = 'failed', version = 8 where id = 'job-1'")
    db.commit()
    assert db.execute("select state from videos").fetchone() == ("failed",)


def test_a_user_reads_only_their_own_jobs(db):
    insert_job(db, "job-a", USER_A)
    insert_job(db, "job-b", USER_B)

    act_as(db, "authenticated", USER_A)
    assert visible_ids(db) == {"job-a"}
    assert db.execute("select * from videos where id = 'job-b'").fetchall() == []

    act_as(db, "authenticated", USER_B)
    assert visible_ids(db) == {"job-b"}

    act_as(db, "authenticated")  # signed in, but no subject
    assert visible_ids(db) == set()


@pytest.mark.parametrize(
    "statement",
    [
        "update videos set state = 'cancelled' where id = 'job-b'",
        "update videos set user_id = %(me)s where id = 'job-b'",
        "delete from videos where id = 'job-b'",
        "insert into videos (id, user_id, state) values ('job-c', %(me)s, 'waiting')",
    ],
)
def test_a_user_changes_no_rows(db, statement):
    insert_job(db, "job-b", USER_B)

    act_as(db, "authenticated", USER_A)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute(statement, {"me": USER_A})
    db.rollback()

    db.execute("reset role")
    rows = db.execute("select id, user_id, state from videos").fetchall()
    assert rows == [("job-b", USER_B, "waiting")]


def test_anon_sees_nothing(db):
    insert_job(db, "job-a", USER_A)

    act_as(db, "anon")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("select * from videos")


def test_the_service_role_reads_and_writes_every_row(db):
    insert_job(db, "job-a", USER_A)
    insert_job(db, "job-b", USER_B)

    act_as(db, "service_role")
    db.execute("update videos set progress = 50, version = 1")

    assert visible_ids(db) == {"job-a", "job-b"}
    assert {p for (p,) in db.execute("select progress from videos")} == {50}


@pytest.mark.parametrize(
    "publication",
    [
        "create publication supabase_realtime",
        "create publication supabase_realtime for all tables",
    ],
)
def test_the_table_joins_supabase_realtime_where_it_exists(database_url, publication):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(publication)

    migrate(database_url)

    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "select schemaname, tablename from pg_publication_tables"
            " where pubname = 'supabase_realtime' and tablename = 'videos'"
        ).fetchall()
    assert tables == [("public", "videos")]
