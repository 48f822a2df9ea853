"""ssh transport: copy a small self-contained bench agent and the job's files to a Linux device, run it there and
bring back the same result JSON the local agent writes.

Uses the system `ssh` binary (OpenSSH), so the user's ssh config, agent, ProxyJump and key types all work as they
do on the command line, and no secret ever passes through edgekit. Every call runs with BatchMode=yes (no password
or passphrase prompts) and StrictHostKeyChecking=yes: an unknown or changed host key is refused, never accepted.

One connection per job: a gzipped tar of the mini-package (the agent's `shipped_modules()`: numpy and the runtime
are all they import) plus the job's files is piped into
`mktemp -d && tar -x`, the agent runs with PYTHONPATH set to that folder, the result is printed back and the
folder is removed (also when the connection drops: the remote shell traps HUP).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import shlex
import subprocess
import tarfile
import time
from pathlib import Path

from edgekit.bench.job import Job
from edgekit.devices.base import DeviceUnreachable
from edgekit.errors import BenchError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
RESULT_MARK, NO_RESULT_MARK = "EDGEKIT-RESULT", "EDGEKIT-NORESULT"
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def shipped_files() -> list[tuple[Path, str]]:
    """(local file, path in the archive) for the mini-package: the modules the agent names."""
    from edgekit.bench.agent import shipped_modules

    out = []
    for module in shipped_modules():
        rel = Path(*module.split(".")[1:])
        if rel.name == "*":
            paths = sorted((PACKAGE_ROOT / rel.parent).glob("*.py"))
        elif (PACKAGE_ROOT / rel).is_dir():
            paths = [PACKAGE_ROOT / rel / "__init__.py"]
        else:
            paths = [PACKAGE_ROOT / rel.with_suffix(".py")]
        out += [(p, "edgekit/" + p.relative_to(PACKAGE_ROOT).as_posix()) for p in paths]
    return out


def ssh_command(s, remote_command: str) -> list[str]:
    """The one ssh argv edgekit builds, for settings `s` (SshSettings): options, then `--`, then the destination
    and the remote command, so no profile value can be read as an ssh option. Host keys are checked; no
    interactive authentication."""
    argv = ["ssh"]
    if s.ssh_config:
        argv += ["-F", str(Path(s.ssh_config).expanduser())]
    argv += ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no",
             "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
             "-o", f"ConnectTimeout={max(1, int(round(s.connect_timeout_s)))}",
             "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-p", str(int(s.port))]
    if s.user:
        argv += ["-l", s.user]
    if s.identity_file:
        argv += ["-i", str(Path(s.identity_file).expanduser()), "-o", "IdentitiesOnly=yes"]
    if s.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={Path(s.known_hosts).expanduser()}", "-o", "GlobalKnownHostsFile=/dev/null"]
    return argv + ["--", s.host, remote_command]


def _remote_dir(workdir: str) -> str:
    if workdir == "~" or workdir.startswith("~/"):
        return '"$HOME"' + (shlex.quote(workdir[1:]) if len(workdir) > 1 else "")
    return shlex.quote(workdir)


def remote_script(s, job: Job) -> str:
    """The shell command run on the device (sh-compatible)."""
    env = " ".join(f"{k}={int(job.threads)}" for k in THREAD_ENV) if job.threads else ""
    wd = _remote_dir(s.workdir)
    return (
        f'mkdir -p {wd} && d=$(mktemp -d {wd}/edgekit-XXXXXX) || exit 97; '
        'trap \'rm -rf "$d"\' EXIT; trap \'rm -rf "$d"; exit 129\' HUP TERM INT; '
        'cd "$d" && tar -xzf - || exit 98; '
        f'{env} PYTHONPATH="$d" {shlex.quote(s.python)} -m edgekit.bench.agent job.json result.json '
        '</dev/null >agent.log 2>&1; '
        f'if [ -f result.json ]; then echo {RESULT_MARK}; cat result.json; '
        f'else echo {NO_RESULT_MARK}; tail -n 5 agent.log; fi'
    )


def pack(job: Job) -> tuple[bytes, Job]:
    """The archive to send and the job as the device sees it (file paths relative to the bench folder)."""
    remote = dataclasses.replace(job, outputs_path="outputs.npy" if job.outputs_path else None,
                                 return_outputs=bool(job.outputs_path))
    moved = {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for local, arc in shipped_files():
            tar.add(str(local), arcname=arc)
        for key, path in job.files().items():
            src = Path(path)
            if not src.is_file():
                raise BenchError(f"{src}: file not found (job key '{key}')")
            name = f"files/{key.replace('.', '')}{''.join(src.suffixes[-1:])}"
            tar.add(str(src), arcname=name)
            for side in sorted(src.parent.glob(src.name + ".*")):  # ONNX external data (model.onnx.data)
                if side.is_file():
                    if f"files/{side.name}" in tar.getnames():
                        raise BenchError(f"{side}: two models of one job have external data named {side.name}")
                    tar.add(str(side), arcname=f"files/{side.name}")
            moved[key] = name
        remote_job = remote.with_files(moved)
        data = remote_job.to_json().encode()
        info = tarfile.TarInfo("job.json")
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), remote_job


def _where(s) -> str:
    host = f"[{s.host}]" if ":" in s.host else s.host
    return f"{s.user + '@' if s.user else ''}{host}:{s.port}"


def _connection_error(s, stderr: str, during: str) -> DeviceUnreachable:
    text = stderr.strip()
    tail = " | ".join(text.splitlines()[-3:]) or "no message from ssh"
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        kh = s.known_hosts or "~/.ssh/known_hosts"
        return DeviceUnreachable(f"ssh {_where(s)}: host key verification failed ({kh}); refusing to connect. "
                                 f"Add the device's real host key to that file (check its fingerprint first)")
    if "Permission denied" in text:
        return DeviceUnreachable(f"ssh {_where(s)}: authentication failed ({tail}); edgekit uses keys only: "
                                 f"set identity_file or load the key into ssh-agent")
    what = f"connection failed or dropped {during}" if during else "connection failed"
    return DeviceUnreachable(f"ssh {_where(s)}: {what}: {tail}")


def run_agent(job: Job, timeout_s: float, profile=None) -> dict:
    """Run one agent job on the device; raises DeviceUnreachable when the connection fails or drops."""
    if profile is None or profile.ssh is None:
        raise BenchError("the ssh transport needs a profile with an `ssh:` section")
    s = profile.ssh
    archive, _ = pack(job)
    what = Path(job.model).name or job.task
    try:
        proc = subprocess.run(ssh_command(s, remote_script(s, job)), input=archive, capture_output=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"bench of {what} on {_where(s)} timed out after {timeout_s:.0f} s") from e
    except FileNotFoundError as e:
        raise DeviceUnreachable("the `ssh` client is not installed on this machine") from e
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    head, mark, body = out.partition(RESULT_MARK + "\n")
    if mark:
        try:
            result = json.loads(body)
        except json.JSONDecodeError as e:
            raise _connection_error(s, err, f"while returning the result of {what}") from e
        if "error" in result:
            raise BenchError(f"{_where(s)}: {result['error']}")
        _save_outputs(result.pop("outputs_npy_b64", None), job.outputs_path)
        return result
    if proc.returncode == 255:
        raise _connection_error(s, err, f"during the bench of {what}")
    if NO_RESULT_MARK in out:
        tail = " | ".join(out.partition(NO_RESULT_MARK)[2].strip().splitlines()[-3:])
        raise BenchError(f"bench agent on {_where(s)} died (exit {proc.returncode}): {tail}")
    if proc.returncode in (97, 98):
        raise BenchError(f"{_where(s)}: could not create or fill a temporary folder under {s.workdir}: {err.strip()}")
    raise _connection_error(s, err or out, f"during the bench of {what} (exit {proc.returncode})")


def _save_outputs(b64: str | None, path: str | None) -> None:
    """The device's outputs on the test split, where the bench needs them (fidelity, cross-ISA parity). They are read
    back with allow_pickle=False."""
    if b64 and path:
        try:
            Path(path).write_bytes(base64.b64decode(b64, validate=True))
        except (ValueError, TypeError) as e:
            raise BenchError(f"the device returned unreadable outputs: {e}") from e


def reachable(profile, timeout_s: float | None = None) -> str | None:
    """None when `ssh ... true` succeeds, else the reason (host key, authentication, network)."""
    s = profile.ssh
    try:
        proc = subprocess.run(ssh_command(s, "true"), capture_output=True, timeout=timeout_s or s.connect_timeout_s + 20)
    except subprocess.TimeoutExpired:
        return f"ssh {_where(s)}: no answer"
    except FileNotFoundError:
        return "the `ssh` client is not installed on this machine"
    if proc.returncode == 0:
        return None
    return str(_connection_error(s, proc.stderr.decode(errors="replace"), ""))


def check(profile, timeout_s: float = 120.0) -> dict:
    from edgekit.devices.base import check_code, parse_check_output, summarize_check, unreachable

    s = profile.ssh
    try:
        proc = subprocess.run(ssh_command(s, f"{shlex.quote(s.python)} -"), input=check_code().encode(),
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return unreachable(profile, f"ssh {_where(s)}: no answer within {timeout_s:.0f} s")
    except FileNotFoundError:
        return unreachable(profile, "the `ssh` client is not installed on this machine")
    if proc.returncode == 255:
        return unreachable(profile, str(_connection_error(s, proc.stderr.decode(errors="replace"), "")))
    out = proc.stdout.decode(errors="replace")
    if "EDGEKIT-CHECK" not in out:
        return unreachable(profile, f"{_where(s)}: `{s.python}` did not run: "
                                    f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return summarize_check(profile, parse_check_output(out))
