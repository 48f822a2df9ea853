"""Throwaway PostgreSQL server for tests (works as root and as non-root).

    url, stop = start_postgres(tmpdir)      # url = postgresql+psycopg2://postgres@127.0.0.1:PORT/optuna
    ...
    stop()                                   # idempotent; fast shutdown + removes the data dir

Design notes
* PostgreSQL refuses to run as root (initdb: "cannot be run as root"; postgres: "root execution ... not
  permitted").  As root we drop privileges *per child process* with subprocess's user=/group=/extra_groups=
  (Python >= 3.9, needs no runuser/su/sudo and works even when the account's shell is /usr/sbin/nologin).
  The account is "postgres" if it exists (the Debian package creates it), else "nobody".
* The data dir must be reachable by that account.  pytest's tmp_path lives under /tmp/pytest-of-root (mode 0700),
  which "nobody"/"postgres" cannot traverse, so as root we probe access and fall back to a fresh
  mkdtemp() under /tmp (removed again by stop()).
* Only TCP on 127.0.0.1 (unix sockets disabled: avoids /var/run/postgresql permissions and the 107-byte socket
  path limit), trust auth, superuser "postgres", no locale (C), fsync off (throwaway).
* Free port: bind 127.0.0.1:0, close, start; retried a few times if the port was taken meanwhile.
* The server runs in the foreground as our child (no pg_ctl daemonising), so it cannot outlive a crashed test
  for long: stop() is also registered with atexit, and the child gets start_new_session so ^C in the terminal
  does not hit it before we do an orderly SIGINT (= "fast" shutdown).
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

__all__ = ["find_pg_bindir", "start_postgres", "PostgresUnavailable"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries (initdb + postgres) found; a test should skip."""


def _version_key(path: str) -> tuple:
    parts = path.rstrip("/").split("/")
    try:
        return tuple(int(x) for x in parts[-2].split("."))
    except ValueError:
        return (0,)


def find_pg_bindir() -> str:
    """Directory holding initdb, postgres, pg_isready, createdb of one PostgreSQL version.

    Order: $PG_BINDIR, initdb on PATH (symlinks resolved: on this image /usr/local/bin/initdb ->
    /usr/lib/postgresql/15/bin/initdb), then the newest /usr/lib/postgresql/*/bin (Debian/Ubuntu apt layout,
    which does NOT put initdb/postgres on PATH), /usr/pgsql-*/bin (RHEL PGDG), `pg_config --bindir`.
    """
    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    which = shutil.which("initdb")
    if which:
        candidates.append(os.path.dirname(os.path.realpath(which)))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                             timeout=10).stdout.strip())
        except Exception:
            pass
    for d in candidates:
        if d and all(os.access(os.path.join(d, exe), os.X_OK) for exe in ("initdb", "postgres")):
            return d
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, postgres) not found; "
                              "install with: apt-get install -y postgresql (binaries land in /usr/lib/postgresql/<ver>/bin)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as_kwargs() -> dict:
    """subprocess kwargs that drop root to an unprivileged account (empty when not root)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' account exists")


def _can_use_dir(path: str, kw: dict) -> bool:
    if not kw:
        return True
    r = subprocess.run(["/bin/sh", "-c", 'test -d "$1" && test -w "$1" && test -x "$1"', "sh", path],
                       cwd="/", **kw)
    return r.returncode == 0


def _wait_ready(bindir: str, port: int, proc: subprocess.Popen, log_path: str, timeout: float) -> None:
    isready = os.path.join(bindir, "pg_isready")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode}:\n{_tail(log_path)}")
        if os.access(isready, os.X_OK):
            ok = subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                 "-d", "postgres"], timeout=10).returncode == 0
        else:  # port open is a weaker signal; createdb below retries anyway
            with socket.socket() as s:
                ok = s.connect_ex(("127.0.0.1", port)) == 0
        if ok:
            return
        time.sleep(0.1)
    raise TimeoutError(f"postgres not ready after {timeout}s:\n{_tail(log_path)}")


def _tail(path: str, n: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"<no log: {e}>"


def start_postgres(tmpdir: str | os.PathLike, dbname: str = "optuna", timeout: float = 60.0
                   ) -> tuple[str, Callable[[], None]]:
    """Start a private PostgreSQL on 127.0.0.1:<free port>; return (sqlalchemy url, stop)."""
    bindir = find_pg_bindir()
    kw = _run_as_kwargs()
    env = dict(os.environ, LC_ALL="C", LANG="C")
    env.pop("PGDATA", None)

    os.makedirs(tmpdir, exist_ok=True)
    base = tempfile.mkdtemp(prefix="pg-", dir=os.fspath(tmpdir))
    owned_base = base
    if kw:
        os.chown(base, kw["user"], kw["group"])
        if not _can_use_dir(base, kw):
            # e.g. pytest's /tmp/pytest-of-root is 0700: not traversable by the unprivileged account
            shutil.rmtree(base, ignore_errors=True)
            base = owned_base = tempfile.mkdtemp(prefix="edgekit-pg-", dir="/tmp")
            os.chown(base, kw["user"], kw["group"])
    data = os.path.join(base, "data")
    log_path = os.path.join(base, "postgres.log")

    r = subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                        "--no-locale", "-E", "UTF8", "--no-sync"],
                       cwd=base, env=env, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        shutil.rmtree(owned_base, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    proc = None
    port = 0
    for attempt in range(5):
        port = _free_port()
        log = open(log_path, "ab")
        if kw:
            os.chown(log_path, kw["user"], kw["group"])
        proc = subprocess.Popen(
            [os.path.join(bindir, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", str(port),
             "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "listen_addresses=127.0.0.1"],
            cwd=base, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, **kw)
        log.close()
        try:
            _wait_ready(bindir, port, proc, log_path, timeout)
            break
        except RuntimeError:
            if "already in use" in _tail(log_path) and attempt < 4:
                continue  # lost the port race; try another one
            shutil.rmtree(owned_base, ignore_errors=True)
            raise
        except TimeoutError:
            proc.kill()
            proc.wait()
            shutil.rmtree(owned_base, ignore_errors=True)
            raise

    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, no waiting
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(owned_base, ignore_errors=True)

    atexit.register(stop)

    createdb = [os.path.join(bindir, "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", dbname]
    for _ in range(50):
        r = subprocess.run(createdb, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    else:
        log_tail = _tail(log_path)
        stop()
        raise RuntimeError(f"createdb failed: {r.stderr}\n{log_tail}")

    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{dbname}", stop
