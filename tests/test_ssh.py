"""The ssh transport against a real OpenSSH server on 127.0.0.1, with throw-away host and client keys."""

import getpass
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from device_helpers import bench_run, digits_onnx

from edgekit.bench.config import BenchConfig
from edgekit.bench.job import Job, Model
from edgekit.devices.base import DeviceUnreachable
from edgekit.devices.profile import DeviceProfile

SSHD = "/usr/sbin/sshd"


def _ensure_sshd() -> str | None:
    """None when sshd is there (installing Debian's openssh-server if we may), else why not."""
    if os.path.exists(SSHD):
        return None
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return "no OpenSSH client (ssh, ssh-keygen) on this machine"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "openssh-server is not installed and this session cannot apt-get install it (not root / no apt)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server"], capture_output=True, timeout=300, env=env)
    except (subprocess.TimeoutExpired, OSError) as e:
        return f"installing openssh-server failed: {e}"
    return None if os.path.exists(SSHD) else "apt-get install openssh-server did not provide /usr/sbin/sshd"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


class Sshd:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        host_pub = _keygen(root / "host_key")
        client_pub = _keygen(root / "client_key")
        (root / "authorized_keys").write_text(client_pub + "\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.user = getpass.getuser()
        (root / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            f"AllowUsers {self.user}\nLogLevel ERROR\n")
        (root / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {' '.join(host_pub.split()[:2])}\n")
        (root / "ssh_config").write_text("")
        (root / "remote").mkdir()
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config"), "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode(errors="replace").strip()[-500:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sshd did not start listening within 15 s")

    def profile(self, **over) -> DeviceProfile:
        ssh = {"host": "127.0.0.1", "port": self.port, "user": self.user, "identity_file": str(self.root / "client_key"),
               "known_hosts": str(self.root / "known_hosts"), "ssh_config": str(self.root / "ssh_config"),
               "python": sys.executable, "workdir": str(self.root / "remote"), "connect_timeout_s": 5}
        ssh.update(over.pop("ssh", {}))
        return DeviceProfile(name="loopback-ssh", transport="ssh", runtimes=["onnxruntime"], ssh=ssh, **over)

    def kill_sessions(self) -> None:
        """The device drops: every process of every open session dies at once."""
        for pid in _descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.kill_sessions()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def sshd(tmp_path):
    why = _ensure_sshd()
    if why:
        pytest.skip(why)
    try:
        server = Sshd(tmp_path / "sshd")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"could not start a test sshd: {e}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def onnx_art(cnn, splits, tmp_path_factory):
    from edgekit.export.artifact import describe

    d = tmp_path_factory.mktemp("ssh-art")
    path = digits_onnx(cnn, splits, d)
    return d, describe("cnn", "onnx", "fp32", path, d)


def test_ssh_bench_gives_the_local_schema_and_comparable_numbers(sshd, onnx_art, splits):
    from edgekit.bench.run import bench_artifact
    from edgekit.devices import load_profile

    d, art = onnx_art
    cfg = BenchConfig(warmup=3, iterations=30, min_time_s=0.3, threads=1)
    outs = {}
    remote = bench_artifact(art, d, splits.x_test, splits.y_test, sshd.profile(), cfg, outputs_into=outs)
    local = bench_artifact(art, d, splits.x_test, splits.y_test, load_profile("host-cpu"), cfg, outputs_into=outs)
    assert remote.status == "ok", remote.error
    assert local.status == "ok", local.error
    np.testing.assert_array_equal(outs[(art.name, "loopback-ssh")], outs[(art.name, "host-cpu")])  # came back over ssh
    assert remote.machine == local.machine == platform.machine() and not remote.emulated
    filled = {k for k, v in local.model_dump().items() if v is not None} - {"device", "duration_s"}
    assert filled <= {k for k, v in remote.model_dump().items() if v is not None}  # same fields measured
    assert remote.accuracy == local.accuracy and remote.test_samples == local.test_samples
    assert 1 / 4 < remote.latency_ms.p50 / local.latency_ms.p50 < 4  # same machine, same model, same threads
    assert remote.latency_ms.samples >= 30 and remote.peak_rss_mb > 0
    assert list((sshd.root / "remote").iterdir()) == []  # the temporary bench folder was removed


def test_the_remote_agent_is_the_shipped_copy(sshd, onnx_art, splits, tmp_path):
    from edgekit.devices.ssh import run_agent

    d, art = onnx_art
    np.save(tmp_path / "x.npy", splits.x_test[:32])
    job = Job(models=[Model(str(d / art.path))], threads=1, affinity=[0], batch_size=4, warmup=1, iterations=5,
              min_time_s=0, max_time_s=5, inputs=str(tmp_path / "x.npy"), accuracy=False,
              outputs_path="/nonexistent/out.npy")
    out = run_agent(job, 120, profile=sshd.profile())
    assert out["agent_file"].startswith(str(sshd.root / "remote")) and out["affinity"] == [0]
    assert len(out["latencies_ms"]) >= 5 and out["runtime"] == "onnxruntime"


def test_check_over_ssh_lists_runtimes(sshd):
    from edgekit.devices import check, reachable

    p = sshd.profile()
    assert reachable(p) is None
    out = check(p)
    assert out["reachable"] and out["runtimes"]["onnxruntime"]["importable"]
    assert out["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))


def test_host_key_mismatch_is_refused(sshd, onnx_art, splits, tmp_path):
    from edgekit.devices import check, reachable
    from edgekit.devices.ssh import run_agent

    impostor = _keygen(tmp_path / "other_host_key")
    (tmp_path / "kh").write_text(f"[127.0.0.1]:{sshd.port} {' '.join(impostor.split()[:2])}\n")
    p = sshd.profile(ssh={"known_hosts": str(tmp_path / "kh")})
    assert "host key verification failed" in reachable(p)
    assert not check(p)["reachable"]
    d, art = onnx_art
    np.save(tmp_path / "x.npy", splits.x_test[:8])
    job = Job(models=[Model(str(d / art.path))], batch_size=1, warmup=0, iterations=1, min_time_s=0, max_time_s=1,
              inputs=str(tmp_path / "x.npy"), accuracy=False)
    with pytest.raises(DeviceUnreachable, match="host key verification failed.*refusing"):
        run_agent(job, 60, profile=p)
    (tmp_path / "empty_kh").write_text("")  # an unknown host is refused too, never added
    assert "host key verification failed" in reachable(sshd.profile(ssh={"known_hosts": str(tmp_path / "empty_kh")}))
    assert (tmp_path / "empty_kh").read_text() == ""


def _wait_for(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_remote_job_is_a_clear_error(sshd, onnx_art, splits):
    from edgekit.bench.run import bench_artifact

    d, art = onnx_art
    box = {}
    cfg = BenchConfig(warmup=1, iterations=10, min_time_s=30, max_time_s=60, threads=1, accuracy=False)
    t = threading.Thread(target=lambda: box.update(row=bench_artifact(art, d, splits.x_test, splits.y_test,
                                                                        sshd.profile(), cfg)))
    t.start()
    agents = lambda: [p for p in _descendants(sshd.proc.pid)  # noqa: E731  (the agent, not the shell around it)
                      if _cmdline(p).startswith(f"{sys.executable} -m edgekit.bench.agent")]
    _wait_for(agents, 60, "the remote agent to start")
    time.sleep(1.0)
    for pid in agents():
        os.kill(pid, signal.SIGKILL)
    t.join(120)
    row = box["row"]
    assert row.status == "failed" and "bench agent on" in row.error and "died" in row.error


def test_dropped_connection_keeps_earlier_results_and_skips_the_rest(sshd, onnx_art, splits, tmp_path):
    from edgekit.pipeline import stage_bench
    from edgekit.report.io import load_report

    d, art = onnx_art
    profile_path = tmp_path / "loopback-ssh.yaml"
    import yaml

    profile_path.write_text(yaml.safe_dump(sshd.profile().model_dump(mode="json", exclude_none=True)))
    run = bench_run(tmp_path, splits, d / art.path, ["first", "second", "third"], [str(profile_path)],
                    min_time_s=4, max_time_s=30, accuracy=False)
    worker = threading.Thread(target=stage_bench, args=(run,))
    worker.start()
    _wait_for(lambda: len(run.report.results) >= 1, 90, "the first result")
    _wait_for(lambda: any("edgekit.bench.agent" in _cmdline(p) for p in _descendants(sshd.proc.pid)), 60,
              "the second bench to start")
    time.sleep(1.0)
    sshd.stop()  # the device goes away: open sessions die and new connections are refused
    worker.join(120)
    rows = {r.artifact: r for r in load_report(run.run_dir).results}  # what was saved on disk
    assert rows["first"].status == "ok" and rows["first"].latency_ms.samples >= 10
    assert rows["second"].status == "failed"
    assert "connection failed or dropped during the bench" in rows["second"].error
    assert rows["third"].status == "skipped" and "unreachable" in rows["third"].error


def test_shipped_agent_imports_only_numpy_and_the_runtime(onnx_art, splits, tmp_path):
    """Unpack what the ssh transport sends and run it with torch, onnx, pydantic, yaml and typer unimportable."""
    from edgekit.devices.ssh import pack

    d, art = onnx_art
    np.save(tmp_path / "x.npy", splits.x_test[:16])
    job = Job(models=[Model(str(d / art.path))], threads=1, batch_size=4, warmup=1, iterations=3, min_time_s=0,
              max_time_s=5, inputs=str(tmp_path / "x.npy"), accuracy=True)
    archive, remote_job = pack(job)
    dest = tmp_path / "device"
    dest.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")
    assert remote_job.model.startswith("files/") and (dest / remote_job.model).is_file()
    blocker = ("import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in {'torch', 'onnx', 'pydantic', 'yaml', 'typer', 'sklearn'}:\n"
               "            raise ImportError('blocked on the device: ' + name)\n"
               "sys.meta_path.insert(0, Block())\n"
               "from edgekit.bench.agent import main\nsys.exit(main(['agent', 'job.json', 'result.json']))\n")
    env = dict(os.environ, PYTHONPATH=str(dest))
    proc = subprocess.run([sys.executable, "-c", blocker], cwd=dest, env=env, capture_output=True, text=True, timeout=120)
    import json

    result = json.loads((dest / "result.json").read_text())
    assert proc.returncode == 0, (result, proc.stderr[-500:])
    assert len(result["predictions"]) == 16 and result["agent_file"].startswith(str(dest))


def test_probe_and_op_profile_run_over_ssh(sshd, onnx_art):
    from edgekit.bench.profile import profile_artifact
    from edgekit.devices.probe import probe

    p = sshd.profile(threads=1)
    m = probe(p, mem_mb=16, gemm={"m": 128, "n": 128, "k": 128}, min_time_s=0.05)
    assert m.fp32_gflops > 0 and m.int8_gops > 0 and m.mem_bandwidth_gbs > 0
    d, art = onnx_art
    prof = profile_artifact(d / art.path, p, runs=10, warmup=2)
    assert prof["transport"] == "ssh" and prof["layers"] and prof["coverage"] > 0


def test_interleaved_timing_runs_over_ssh(sshd, onnx_art, splits, tmp_path):
    """The latency gate's paired job ships both model files and times them alternately on the device."""
    import shutil

    from edgekit.bench.interleaved import PER_ROUND, Side, bench_interleaved

    d, art = onnx_art
    other = tmp_path / "candidate.onnx"
    shutil.copy(d / art.path, other)
    cfg = BenchConfig(warmup=1, iterations=20, min_time_s=0.0, threads=1)
    out = bench_interleaved(Side(d / art.path, "onnxruntime", 1), Side(other, "onnxruntime", 1), splits.x_test,
                            sshd.profile(threads=1), cfg)
    assert out.rounds >= 30 and len(out.base_ms) == len(out.cand_ms) == out.rounds * PER_ROUND
    assert list((sshd.root / "remote").iterdir()) == []
