"""Field types for the parts of a device profile that reach a command line: hosts, users, adb serials, paths and
flags are checked when the profile is loaded, so a profile can never pass an option to ssh or adb, or hide a
second command in a value.

Every value here is refused when it is empty, starts with '-', or holds a control character; hosts, users and
serials must also match a plain character set. An ssh config file a profile names may only hold the connection
and host-key keywords in `SSH_CONFIG_KEYWORDS` (no ProxyCommand, LocalCommand, Match exec, Include, PKCS11Provider,
forwardings...).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DNS_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}")
_SERIAL = re.compile(r"[A-Za-z0-9\[][A-Za-z0-9._:%@/+\[\]-]{0,127}")
_FLAG = re.compile(r"--[A-Za-z0-9_]+(=[^\x00-\x1f\x7f]*)?")

SSH_CONFIG_KEYWORDS = frozenset(k.lower() for k in (
    "Host", "HostName", "User", "Port", "AddressFamily", "IdentityFile", "IdentitiesOnly", "CertificateFile",
    "UserKnownHostsFile", "GlobalKnownHostsFile", "HostKeyAlias", "HostKeyAlgorithms", "StrictHostKeyChecking",
    "CheckHostIP", "UpdateHostKeys", "HashKnownHosts", "PubkeyAcceptedAlgorithms", "PubkeyAcceptedKeyTypes",
    "CASignatureAlgorithms", "KexAlgorithms", "Ciphers", "MACs", "Compression", "ConnectTimeout",
    "ConnectionAttempts", "ServerAliveInterval", "ServerAliveCountMax", "TCPKeepAlive", "IPQoS", "RekeyLimit",
    "BatchMode", "LogLevel", "PreferredAuthentications", "PubkeyAuthentication", "PasswordAuthentication",
    "KbdInteractiveAuthentication", "ChallengeResponseAuthentication", "GSSAPIAuthentication"))
"""Keywords allowed in an ssh config file named by a profile: none of them runs a program, loads a library,
opens a forwarding or sends local environment variables."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _refuse(value: str, why: str) -> PydanticCustomError:
    return PydanticCustomError("unsafe_value", "{value} {why}", {"value": _shown(value), "why": why})


def _plain(value: str, what: str) -> str:
    if not value:
        raise PydanticCustomError("unsafe_value", "must not be empty")
    if _CONTROL.search(value):
        raise _refuse(value, f"holds a control character; a {what} never does")
    if value.startswith("-"):
        raise _refuse(value, f"starts with '-', so a command would read it as an option, not a {what}")
    return value


def check_host(value: str) -> str:
    """A DNS name (or ssh config alias), an IPv4 address, or an IPv6 address (bare or in brackets)."""
    _plain(value, "host")
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if ":" in bare or value != bare:
        try:
            return str(ipaddress.IPv6Address(bare))
        except ValueError:
            raise _refuse(value, "is not a valid IPv6 address") from None
    if len(value) > 253 or not _DNS_NAME.fullmatch(value):
        raise _refuse(value, "is not a host name or IP address (letters, digits, '.', '-', '_'; or [IPv6])")
    return value


def check_user(value: str) -> str:
    _plain(value, "user name")
    if not _USER.fullmatch(value):
        raise _refuse(value, "is not a user name: up to 64 letters, digits, '.', '_' and '-'")
    return value


def check_serial(value: str) -> str:
    _plain(value, "serial")
    if not _SERIAL.fullmatch(value):
        raise _refuse(value, "is not an adb serial: letters, digits and . _ : % @ / + - [ ] without spaces")
    return value


def check_path(value: str) -> str:
    """A file or folder path (on this machine or on the device)."""
    return _plain(value, "path")


def check_option_path(value: str) -> str:
    """A path ssh reads from an `-o Key=value` option, which splits at spaces and interprets quotes."""
    _plain(value, "path")
    if re.search(r"[\s\"'\\]", value):
        raise _refuse(value, "holds a space, quote or backslash, which ssh would split or interpret here")
    return value


def check_text(value: str) -> str:
    """One line of prose printed to a terminal or a report: no control characters (no escape sequences)."""
    if _CONTROL.search(value):
        raise _refuse(value, "holds a control character (a newline or a terminal escape)")
    if len(value) > 2000:
        raise PydanticCustomError("unsafe_value", "is longer than 2000 characters")
    return value


def check_flag(value: str) -> str:
    if not _FLAG.fullmatch(value):
        raise _refuse(value, "is not a benchmark_model flag of the form --name or --name=value")
    return value


def ssh_config_problem(path: Path) -> str | None:
    """Why the ssh config file at `path` may not be used for a profile, or None when every keyword is allowed."""
    try:
        text = path.expanduser().read_text(errors="replace")
    except OSError as e:
        return f"cannot read {path}: {e.strerror or e}"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z0-9]+)(?:\s*=\s*|\s+|$)", line)
        if not m or m.group(1).lower() not in SSH_CONFIG_KEYWORDS:
            word = m.group(1) if m else line[:40]
            return (f"{path}:{number}: `{word}` is not allowed in an ssh config named by a device profile (only "
                    f"connection and host-key settings such as HostName, User, Port, IdentityFile, UserKnownHostsFile; "
                    f"put anything else in your own ~/.ssh/config)")
    return None


def check_ssh_config(value: str) -> str:
    _plain(value, "path")
    why = ssh_config_problem(Path(value))
    if why:
        raise PydanticCustomError("unsafe_value", "{why}", {"why": why})
    return value


Host = Annotated[str, AfterValidator(check_host)]
User = Annotated[str, AfterValidator(check_user)]
Serial = Annotated[str, AfterValidator(check_serial)]
PathText = Annotated[str, AfterValidator(check_path)]
OptionPath = Annotated[str, AfterValidator(check_option_path)]
SshConfigPath = Annotated[str, AfterValidator(check_ssh_config)]
BenchmarkFlag = Annotated[str, AfterValidator(check_flag)]
Text = Annotated[str, AfterValidator(check_text)]
