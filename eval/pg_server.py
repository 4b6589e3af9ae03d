"""A throwaway PostgreSQL server (tests, benchmarks: `eval.store_throughput`): `postgres_server()` starts one on a free port of
127.0.0.1 (socket in a temp dir), with password authentication and a database `metallmix`, yields
its URL (`postgresql+psycopg://metallmix:<password>@127.0.0.1:<port>/metallmix`), then stops it and
removes its files. `ServerUnavailable` says why none could start (no binaries, no driver, ...):
callers skip on it. As root, the server runs as the `postgres` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "metallmix"
DATABASE = "metallmix"


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started here (the message says why)."""


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    candidates = [str(Path(found).parent)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if all(os.access(Path(folder) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")


def _runner(base: Path) -> list[str]:
    """The command prefix that runs the server's tools: as `postgres` when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailable("running as root and there is no 'postgres' user") from None
    if not shutil.which("runuser"):
        raise ServerUnavailable("running as root and there is no runuser")
    for path in [base, *base.rglob("*")]:
        os.chown(path, pg.pw_uid, pg.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ServerUnavailable(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")


@contextmanager
def postgres_server(max_connections: int = 100) -> Iterator[str]:
    """Start a server, create database `metallmix`, yield its URL; stop and delete it at the end.
    Durability is off (fsync, synchronous_commit, full_page_writes): a throwaway server."""
    try:
        import psycopg
    except ImportError:
        raise ServerUnavailable("the PostgreSQL driver psycopg is not installed") from None
    bin_dir = _bin_dir()
    base = Path(tempfile.mkdtemp(prefix="metallmix-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    password = secrets.token_hex(8)
    (base / "pw").write_text(password + "\n")
    started = False
    try:
        prefix = _runner(base)
        _run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "scram-sha-256",
              f"--pwfile={base / 'pw'}", "--no-sync", "-E", "UTF8", "--locale=C"], "initdb")
        port = free_port()
        options = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={max_connections}")
        _run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
              "-t", "60", "-o", options, "start"], "pg_ctl start")
        started = True
        with psycopg.connect(host="127.0.0.1", port=port, user=USER, password=password,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run([*_runner(base), str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """Create an empty database `name` on the server of `url` (dropped first if it exists); its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                         password=parsed.password, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)
