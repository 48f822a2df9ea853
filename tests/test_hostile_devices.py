"""Hostile device profiles: option injection into ssh and adb, shell injection into remote commands, traversal
through names. Each must be refused when the profile loads, as a one-line error naming the file and key, and
nothing may run: no marker file appears, whatever command reads the profile."""

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from edgekit.devices.profile import DeviceProfile, SshSettings, load_profile
from edgekit.errors import DeviceError

MARK = "EDGEKIT-PWNED"
TOUCH = f"touch {MARK}"
SSH = {"transport": "ssh"}
ADB = {"transport": "adb", "runtimes": ["litert"]}


def _ssh(**fields) -> dict:
    return {**SSH, "ssh": {"host": "127.0.0.1", "port": 1, **fields}}


def _adb(**fields) -> dict:
    return {**ADB, "adb": fields}


CASES = {
    "host-option": (_ssh(host=f"-oProxyCommand={TOUCH}"), "ssh.host"),
    "host-option-bracketed": (_ssh(host=f"[-oProxyCommand={TOUCH}]"), "ssh.host"),
    "host-space": (_ssh(host=f"pi {TOUCH}"), "ssh.host"),
    "host-newline": (_ssh(host=f"pi\nProxyCommand {TOUCH}"), "ssh.host"),
    "host-shell": (_ssh(host=f"pi;{TOUCH}"), "ssh.host"),
    "host-user-at": (_ssh(host="-l@pi"), "ssh.host"),
    "user-option": (_ssh(user=f"-oProxyCommand={TOUCH}"), "ssh.user"),
    "user-at": (_ssh(user="pi@evil"), "ssh.user"),
    "user-newline": (_ssh(user="pi\n-oProxyCommand=x"), "ssh.user"),
    "port-option": (_ssh(port=f"22 -oProxyCommand={TOUCH}"), "ssh.port"),
    "port-string": (_ssh(port="22"), "ssh.port"),
    "port-zero": (_ssh(port=0), "ssh.port"),
    "port-bool": (_ssh(port=True), "ssh.port"),
    "identity-option": (_ssh(identity_file=f"-oProxyCommand={TOUCH}"), "ssh.identity_file"),
    "known-hosts-split": (_ssh(known_hosts=f"kh -oProxyCommand={TOUCH}"), "ssh.known_hosts"),
    "workdir-option": (_ssh(workdir="-rf"), "ssh.workdir"),
    "python-newline": (_ssh(python=f"python3\n{TOUCH}"), "ssh.python"),
    "timeout-inf": (_ssh(connect_timeout_s=float("inf")), "ssh.connect_timeout_s"),
    "ssh-extra-options": (_ssh(options=[f"-oProxyCommand={TOUCH}"]), "ssh.options"),
    "serial-option": (_adb(serial="-s x"), "adb.serial"),
    "serial-leading-dash": (_adb(serial=f"-oProxyCommand={TOUCH}"), "adb.serial"),
    "serial-shell": (_adb(serial=f"x;{TOUCH}"), "adb.serial"),
    "adb-program": (_adb(adb="/bin/sh"), "adb.adb"),
    "adb-workdir-option": (_adb(workdir="-x"), "adb.workdir"),
    "adb-binary-option": (_adb(benchmark_model="--help"), "adb.benchmark_model"),
    "adb-flag-shell": (_adb(extra_flags=[f"; {TOUCH}"]), "adb.extra_flags.0"),
    "name-traversal": ({"name": "../x"}, "name"),
    "name-option": ({"name": f"-oProxyCommand={TOUCH}"}, "name"),
    "name-slash": ({"name": "a/b"}, "name"),
    "description-escape": ({"description": "pi\x1b]0;owned\x07"}, "description"),
    "threads-bomb": ({"threads": 10**9}, "threads"),
    "affinity-bomb": ({"affinity": [0, 10**9]}, "affinity.1"),
    "runtime-not-a-name": ({"runtimes": ["onnxruntime; x"]}, "runtimes.0"),
    "peak-infinite": ({"peaks": {"fp32_gflops": float("inf")}}, "peaks.fp32_gflops"),
    "budget-nan": ({"budgets": {"max_latency_ms": float("nan")}}, "budgets.max_latency_ms"),
}


def _write(folder: Path, fields: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "evil.yaml"
    path.write_text(yaml.safe_dump({"name": "evil", **fields}, sort_keys=False))
    return path


def _no_marker(root: Path) -> None:
    assert not list(root.rglob(MARK)), "a hostile profile ran a command"
    assert not (Path.cwd() / MARK).exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_profile_is_refused_when_loaded(tmp_path, monkeypatch, case):
    fields, key = CASES[case]
    path = _write(tmp_path / "devices", fields)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeviceError) as e:
        load_profile(str(path))
    assert e.value.key == key and e.value.path == str(path)
    assert len(str(e.value).splitlines()) == 1 and str(path) in str(e.value)
    _no_marker(tmp_path)


def test_ssh_config_may_hold_only_connection_settings(tmp_path):
    kh = tmp_path / "kh"
    kh.write_text("")
    for text in (f"Host *\n  ProxyCommand {TOUCH}\n", f"Match exec \"{TOUCH}\"\n", f"LocalCommand {TOUCH}\n",
                 "PermitLocalCommand=yes\n", "Include /etc/passwd\n", f"KnownHostsCommand {TOUCH}\n",
                 "PKCS11Provider /tmp/evil.so\n", "host x\n\tProxyJump evil\n", "SendEnv *\n", "ForwardAgent yes\n"):
        (tmp_path / "cfg").write_text(text)
        path = _write(tmp_path, _ssh(ssh_config=str(tmp_path / "cfg")))
        with pytest.raises(DeviceError) as e:
            load_profile(str(path))
        assert e.value.key == "ssh.ssh_config" and "is not allowed" in str(e.value), text
    (tmp_path / "cfg").write_text("# fine\nHost pi\n\tHostName 192.168.1.7\n\tUser pi\n  Port=2222\nIdentitiesOnly yes\n")
    assert load_profile(str(path)).ssh.ssh_config == str(tmp_path / "cfg")
    path = _write(tmp_path, _ssh(ssh_config=str(tmp_path / "missing")))
    with pytest.raises(DeviceError, match="cannot read"):
        load_profile(str(path))


def test_valid_hosts_users_and_serials_still_load(tmp_path):
    for host, shown in (("raspberrypi.local", "raspberrypi.local"), ("10.0.0.7", "10.0.0.7"), ("[::1]", "::1"),
                        ("fe80::1%eth0", "fe80::1%eth0"), ("my_pi", "my_pi"), ("pi.", "pi.")):
        assert load_profile(str(_write(tmp_path, _ssh(host=host, user="pi.user_1")))).ssh.host == shown
    for serial in ("R5CW123", "emulator-5554", "192.168.1.5:5555", "adb-R5CW-x._adb-tls-connect._tcp", "usb:1-1"):
        assert load_profile(str(_write(tmp_path, _adb(serial=serial)))).adb.serial == serial


def test_ssh_argv_ends_with_separator_destination_and_command():
    from edgekit.devices.ssh import ssh_command

    s = SshSettings(host="pi.local", user="pi", port=2222, identity_file="~/k", known_hosts="/kh", ssh_config="/dev/null")
    argv = ssh_command(s, "true")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "pi.local", "true"] and argv.count("--") == 1
    assert argv[argv.index("-l") + 1] == "pi" and argv[argv.index("-p") + 1] == "2222"
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert ssh_command(SshSettings(host="[::1]"), "true")[-2] == "::1"


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client on this machine")
def test_the_real_ssh_client_reads_no_option_from_the_destination_or_user(tmp_path):
    """Even with validation bypassed, the argv keeps the host and user out of ssh's option parser."""
    from edgekit.devices.ssh import ssh_command

    for fields in ({"host": f"-oProxyCommand={TOUCH}"}, {"host": "127.0.0.1", "user": f"-oProxyCommand={TOUCH}"}):
        s = SshSettings.model_construct(**{**SshSettings(host="x").model_dump(), "port": 1, "connect_timeout_s": 2,
                                           "known_hosts": "/dev/null", **fields})
        proc = subprocess.run(ssh_command(s, "true"), cwd=tmp_path, capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 255
    _no_marker(tmp_path)


def test_remote_script_quotes_every_value(tmp_path):
    """The device's shell gets the workdir and interpreter as single words, whatever they hold."""
    from edgekit.bench.job import Job
    from edgekit.devices.ssh import remote_script

    odd = f"{tmp_path}/w $(touch {MARK}) `touch {MARK}`; touch {MARK}"
    s = SshSettings(host="pi", workdir=odd, python=f"py; touch {MARK}")
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w:gz").close()
    proc = subprocess.run(["sh", "-c", remote_script(s, Job(threads=2))], cwd=tmp_path, capture_output=True,
                          input=empty.getvalue(), timeout=60)
    assert Path(odd).is_dir() and list(Path(odd).iterdir()) == []  # made, used and cleaned up as one word
    assert b"EDGEKIT-NORESULT" in proc.stdout
    _no_marker(tmp_path)


def test_adb_argv_client_never_comes_from_the_profile(monkeypatch):
    from edgekit.devices.adb import adb_argv

    a = DeviceProfile(name="p", transport="adb", adb={"serial": "R5CW123"}).adb
    monkeypatch.delenv("EDGEKIT_ADB", raising=False)
    assert adb_argv(a, "get-state") == ["adb", "-s", "R5CW123", "get-state"]
    monkeypatch.setenv("EDGEKIT_ADB", "/opt/platform-tools/adb")
    assert adb_argv(a, "get-state")[0] == "/opt/platform-tools/adb"


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _refused(out: subprocess.CompletedProcess, path: str, key: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(lines) == 1 and lines[0].startswith("error: ")
    assert path in lines[0] and key in lines[0]


CLI_CASES = ("host-option", "user-option", "host-newline", "port-option", "serial-option", "adb-program",
             "name-traversal")


def test_cli_refuses_hostile_profiles_before_running_anything(tmp_path):
    """`devices check` reaches ssh/adb first; each hostile profile must stop it with exit 2 and one line."""
    for case in CLI_CASES:
        fields, key = CASES[case]
        cwd = tmp_path / case
        _write(cwd / "devices", fields)
        _refused(_cli(cwd, "devices", "check", "devices/evil.yaml"), "evil.yaml", key)
    _no_marker(tmp_path)


def test_bench_run_and_list_refuse_a_hostile_profile(tmp_path):
    from helpers import write_recipe

    from edgekit import __version__
    from edgekit.report.io import save_report
    from edgekit.report.schema import Report

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_recipe(run_dir / "recipe.yaml")
    save_report(Report(edgekit_version=__version__, recipe_name="tiny", created="now"), run_dir)
    for case in ("host-option", "user-option"):
        fields, key = CASES[case]
        cwd = tmp_path / case
        path = _write(cwd / "devices", fields)
        _refused(_cli(cwd, "bench", str(run_dir), "-d", str(path)), str(path), key)
        write_recipe(cwd / "recipe.yaml", bench={"devices": [str(path)], "warmup": 1, "iterations": 2})
        out = _cli(cwd, "run", "recipe.yaml", "--out", str(cwd / "runs" / "r"))
        _refused(out, str(path), key)
        assert not (cwd / "runs").exists()  # refused before the run folder was made
    _refused(_cli(tmp_path / "host-option", "devices", "list"), "evil.yaml", "ssh.host")
    _refused(_cli(tmp_path / "user-option", "devices", "show", "devices/evil.yaml"), "evil.yaml", "ssh.user")
    _refused(_cli(tmp_path, "devices", "show", "../x"), "'../x'", "not a valid name")
    _no_marker(tmp_path)


def test_a_device_named_by_a_report_is_a_name_not_a_profile_file(tmp_path):
    """A tampered report cannot point the gate at a profile file of its own (its host, its known_hosts)."""
    from edgekit.report.gates import budget_gates
    from edgekit.report.schema import LatencyStats, Result

    path = _write(tmp_path, {"budgets": {"max_latency_ms": 1.0}})
    assert load_profile(str(path)).budgets.max_latency_ms == 1.0
    with pytest.raises(DeviceError, match="not a valid name"):
        load_profile(str(path), name_only=True)
    stats = LatencyStats(p50=5, p90=5, p99=5, mean=5, std=0, min=5, max=5, iqr=0, samples=10)
    row = Result(artifact="a", device=str(path), runtime="onnxruntime", latency_ms=stats)
    assert budget_gates(row, "a@evil") == []
    assert [g.passed for g in budget_gates(row.model_copy(update={"device": "rpi5"}), "a@rpi5")] == [True]


def test_a_hostile_working_folder_is_not_imported_by_bench_children(tmp_path, monkeypatch):
    """`python -m`/`-c` children would import a numpy.py or edgekit/ from the current folder: they run with -P."""
    from edgekit.bench.job import Job, Model
    from edgekit.devices import check, load_profile
    from edgekit.devices.local import run_agent

    payload = f"open({str(tmp_path / MARK)!r}, 'w').write('x')\n"
    (tmp_path / "numpy.py").write_text(payload)
    (tmp_path / "edgekit" / "bench").mkdir(parents=True)
    for init in ("edgekit/__init__.py", "edgekit/bench/__init__.py", "edgekit/bench/agent.py"):
        (tmp_path / init).write_text(payload)
    monkeypatch.chdir(tmp_path)
    assert check(load_profile("host-cpu"))["runtimes"]["onnxruntime"]["importable"]
    with pytest.raises(Exception):  # noqa: B017  (no such model: the real agent says so)
        run_agent(Job(models=[Model(str(tmp_path / "missing.onnx"))]), 120)
    _no_marker(tmp_path)
