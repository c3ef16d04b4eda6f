"""Throwaway PostgreSQL and Redis servers on loopback, for the multi-machine code paths."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.conftest import free_port


def _as_postgres_user(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run through the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL in a temporary folder; yield its SQLAlchemy URL."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    bindir = os.path.dirname(bins[-1])
    data = tempfile.mkdtemp(prefix="aift-pg-", dir="/tmp")
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    port = free_port()
    subprocess.run(
        _as_postgres_user([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "aift"]),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres_user(
            [
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-l",
                f"{data}/server.log",
                "-w",
                "-o",
                f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://aift@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres_user([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """Start a Redis server without persistence; yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("Redis is not installed (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
