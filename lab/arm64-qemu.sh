#!/usr/bin/env bash
# An emulated arm64 board on an x86_64 Linux machine, reached over ssh like a real one.
#
#   lab/arm64-qemu.sh [up|build|stop]      (as root; needs apt, qemu-user-static, openssh-server)
#
# build: an arm64 Debian root holding only Python 3.11 (the arm64 .debs, unpacked with dpkg -x: no emulated package
#        configuration) and the aarch64 wheels of numpy, onnxruntime, ai-edge-litert and openvino (downloaded by the
#        host's pip for the aarch64 platform and unzipped: nothing is built or installed under emulation).
#        EDGEKIT_ARM64_EXTRA=executorch adds executorch and the aarch64 torch it needs at import (opt-in: PyPI's
#        aarch64 torch is a CUDA build, so its import needs the CUDA libraries too: gigabytes; see docs/devices.md). Cached in
#        $EDGEKIT_ARM64_ROOT (default /var/cache/edgekit/arm64) with a stamp of what it holds: a second build with the
#        same stamp is a no-op. The wheels' versions follow the host's Python ($EDGEKIT_ARM64_HOST_PYTHON, default
#        python3) where it has them, so ARM and x86 run the same library versions.
# up:    build, then start a throw-away sshd on 127.0.0.1 (own host key, own client key, a free port) whose remote
#        Python is `qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11` (the wrapper ROOT/../python3), and write the
#        device profiles arm64-emulated.yaml (the runtimes the root holds; ONNX files on ONNX Runtime) and
#        arm64-emulated-openvino.yaml (ONNX files on OpenVINO, f32, only), both transport ssh, emulated: true, into
#        $EDGEKIT_ARM64_PROFILES (default ./devices; the cache folder when ./devices is the edgekit checkout's link to
#        the shipped profiles).
# stop:  stop that sshd. Its keys, config and bench folder live in $EDGEKIT_ARM64_SSHD (default $EDGEKIT_ARM64_ROOT/sshd).
#
# No binfmt_misc registration is needed: the ssh side starts the emulator explicitly. The emulated CPU is a Cortex-A76
# (a Raspberry Pi 5's core: NEON and dotprod, no SVE or i8mm; $EDGEKIT_ARM64_CPU picks another qemu model), and a
# matching /proc/cpuinfo is placed in the root (qemu -L serves it; the host's x86 one crashes ONNX Runtime's cpuinfo).
# Timings under emulation mean nothing; the outputs are the ARM kernels' own.
set -euo pipefail

CACHE=${EDGEKIT_ARM64_ROOT:-/var/cache/edgekit/arm64}
SSH_STATE=${EDGEKIT_ARM64_SSHD:-$CACHE/sshd}
HOST_PY=${EDGEKIT_ARM64_HOST_PYTHON:-python3}
CPU_MODEL=${EDGEKIT_ARM64_CPU:-cortex-a76}
QEMU=/usr/bin/qemu-aarch64-static
SSHD=/usr/sbin/sshd
DEBS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 zlib1g libffi8 libssl3 libstdc++6
libgcc-s1 gcc-12-base libbz2-1.0 libcrypt1 libdb5.3 liblzma5 libmd0 libncursesw6 libnsl2 libreadline8 libsqlite3-0
libtinfo6 libtirpc3 libuuid1 libzstd1 libcom-err2 libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0
libselinux1 libpcre2-8-0 libacl1"
WHEEL_PKGS="numpy onnxruntime ai-edge-litert openvino"
EXTRA=${EDGEKIT_ARM64_EXTRA:-}
EXTRA_PKGS=""
# What `import executorch.runtime` loads besides torch, downloaded without their own dependencies: executorch's and
# torch's pins would pull training and converter packages that have no aarch64 wheel or are never imported here.
ET_DEPS="typing-extensions sympy mpmath filelock networkx jinja2 markupsafe fsspec pyyaml ruamel.yaml tabulate"
case "$EXTRA" in
    "") ;;
    executorch) EXTRA_PKGS="executorch torch" ;;
    *) echo "arm64-qemu: EDGEKIT_ARM64_EXTRA='$EXTRA' is not one of: executorch (or unset)" >&2; exit 2 ;;
esac

say() { echo "arm64-qemu: $*" >&2; }
die() { say "$*"; exit 1; }

wheel_specs() {  # the host's versions where it has the package (less a local tag such as +cpu), so both ISAs run
    local spec="" v p  # the same libraries
    for p in "$@"; do
        v=$("$HOST_PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$p" 2>/dev/null || true)
        v=${v%%+*}
        spec="$spec ${p}${v:+==$v}"
    done
    echo "$spec"
}

pip_aarch64() {  # pip download for Linux aarch64, CPython 3.11
    local plats="" v
    for v in 17 27 28 31 34 35 36; do plats="$plats --platform manylinux_2_${v}_aarch64"; done
    # shellcheck disable=SC2086
    "$HOST_PY" -m pip download -q --disable-pip-version-check --only-binary=:all: $plats \
        --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp "$@" 2>&1 | { grep -v "^WARNING" >&2 || true; }
    return "${PIPESTATUS[0]}"
}

linked_requirements() {  # a wheel's Linux-only requirements (PyPI's aarch64 torch: the CUDA libraries it links), less
    "$HOST_PY" - "$1" <<'PY'  # the Python packages (triton, cuda-bindings) that importing it does not need
import re, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        m = re.match(r"Requires-Dist: ([^;]+);\s*(.*)", line)
        if m and 'platform_system == "Linux"' in m[2] and "extra ==" not in m[2] \
                and not re.match(r"(triton|cuda-bindings)\b", m[1]):
            print(m[1].replace(" ", ""))
PY
}

ensure_host_tools() {
    local need=""
    [ -x "$QEMU" ] || need="$need qemu-user-static"
    [ -x "$SSHD" ] || need="$need openssh-server"
    if [ -n "$need" ]; then
        [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "missing:$need (install them, or run as root with apt)"
        say "installing$need"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
    fi
}

build() {
    ensure_host_tools
    local specs extra stamp
    specs=$(wheel_specs $WHEEL_PKGS)
    extra=$(wheel_specs $EXTRA_PKGS)
    stamp="edgekit-arm64-root v1; debian $(. /etc/os-release; echo "$VERSION_CODENAME"); cpu $CPU_MODEL; wheels$specs"
    [ -z "$extra" ] || stamp="$stamp; extra$extra"
    if [ -f "$CACHE/root/.edgekit-stamp" ] && [ "$(cat "$CACHE/root/.edgekit-stamp")" = "$stamp" ]; then
        say "reusing $CACHE/root ($stamp)"
        write_wrapper
        return
    fi
    command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || die "building the root needs root and apt-get (Debian/Ubuntu)"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt-get update -qq
    elif ! apt-cache show libc6:arm64 >/dev/null 2>&1; then
        apt-get update -qq
    fi
    mkdir -p "$CACHE"
    local work="$CACHE/build.$$"
    rm -rf "$work"
    mkdir -p "$work/debs" "$work/wheels" "$work/root"
    trap 'rm -rf "$work"' EXIT
    say "downloading arm64 packages"
    (cd "$work/debs" && apt-get download -qq $(for p in $DEBS; do echo "$p:arm64"; done) 2>&1 | grep -v "unsandboxed" >&2 || true)
    for d in "$work"/debs/*.deb; do dpkg -x "$d" "$work/root"; done
    [ -x "$work/root/usr/bin/python3.11" ] || die "the arm64 python3.11 did not unpack (see apt-get's messages above)"
    say "downloading aarch64 wheels:$specs"
    # shellcheck disable=SC2086
    pip_aarch64 -d "$work/wheels" $specs || true
    ls "$work"/wheels/onnxruntime-*.whl "$work"/wheels/openvino-*.whl >/dev/null 2>&1 ||
        die "pip could not download the aarch64 wheels"
    if [ -n "$extra" ]; then
        say "downloading aarch64 wheels (EDGEKIT_ARM64_EXTRA=$EXTRA):$extra"
        # shellcheck disable=SC2086
        pip_aarch64 -d "$work/wheels" --no-deps $extra $ET_DEPS || true
        local torch_whl
        torch_whl=$(ls "$work"/wheels/torch-*.whl 2>/dev/null | head -1)
        [ -n "$torch_whl" ] && ls "$work"/wheels/executorch-*.whl >/dev/null 2>&1 ||
            die "pip could not download the aarch64 wheels of$extra"
        local linked
        linked=$(linked_requirements "$torch_whl" | tr '\n' ' ')
        if [ -n "$linked" ]; then
            say "$(basename "$torch_whl") is a CUDA build; its import needs: $linked"
            # shellcheck disable=SC2086
            pip_aarch64 -d "$work/wheels" $linked || die "could not download the libraries PyPI's aarch64 torch links \
(above); a CPU-only aarch64 torch wheel (torch==VERSION+cpu) on pip's index avoids them"
        fi
    fi
    local site="$work/root/usr/lib/python3/dist-packages"
    mkdir -p "$site" "$work/root/proc"
    for w in "$work"/wheels/*.whl; do "$HOST_PY" -m zipfile -e "$w" "$site"; done
    cpuinfo > "$work/root/proc/cpuinfo"
    echo "$stamp" > "$work/root/.edgekit-stamp"
    rm -rf "$CACHE/root"
    mv "$work/root" "$CACHE/root"
    rm -rf "$work"
    trap - EXIT
    write_wrapper
    say "checking the root"
    "$CACHE/python3" -c "import platform, numpy, onnxruntime, openvino; print('arm64-qemu:', platform.machine(), 'numpy',
numpy.__version__, 'onnxruntime', onnxruntime.__version__, 'openvino', openvino.get_version())" >&2 ||
        die "the arm64 Python cannot import onnxruntime and openvino"
    if [ -n "$extra" ]; then
        "$CACHE/python3" -c "import executorch.runtime" >&2 || die "the arm64 Python cannot import executorch.runtime"
    fi
}

cpuinfo() {  # what a Cortex-A76 (Raspberry Pi 5) kernel shows, one block per host core
    local n i
    n=$(getconf _NPROCESSORS_ONLN)
    for ((i = 0; i < n; i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$i"
    done
}

write_wrapper() {
    cat > "$CACHE/python3" <<EOF
#!/bin/sh
# The emulated board's Python (written by lab/arm64-qemu.sh).
QEMU_CPU=$CPU_MODEL exec $QEMU -L $CACHE/root $CACHE/root/usr/bin/python3.11 "\$@"
EOF
    chmod 755 "$CACHE/python3"
}

free_port() {
    "$HOST_PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

sshd_running() {
    local s="$SSH_STATE"
    [ -f "$s/sshd.pid" ] && [ -f "$s/port" ] && kill -0 "$(cat "$s/sshd.pid")" 2>/dev/null
}

start_sshd() {
    local s="$SSH_STATE" user port
    user=$(id -un)
    if sshd_running; then
        say "sshd already running on 127.0.0.1:$(cat "$s/port")"
        return
    fi
    mkdir -p "$s/remote"
    chmod 700 "$s"
    [ -f "$s/host_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$s/host_key"
    [ -f "$s/client_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$s/client_key"
    cp "$s/client_key.pub" "$s/authorized_keys"
    port=$(free_port)
    cat > "$s/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $s/host_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowUsers $user
LogLevel ERROR
EOF
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$s/host_key.pub")" > "$s/known_hosts"
    : > "$s/ssh_config"
    [ "$(id -u)" != 0 ] || mkdir -p /run/sshd
    "$SSHD" -f "$s/sshd_config" -p "$port" -E "$s/sshd.log"
    echo "$port" > "$s/port"
    for _ in $(seq 50); do
        if ssh -F "$s/ssh_config" -i "$s/client_key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
            -o UserKnownHostsFile="$s/known_hosts" -o ConnectTimeout=2 -p "$port" -l "$user" 127.0.0.1 true 2>/dev/null; then
            say "sshd on 127.0.0.1:$port"
            return
        fi
        sleep 0.2
    done
    die "sshd did not answer on 127.0.0.1:$port (see $s/sshd.log)"
}

stop_sshd() {
    local s="$SSH_STATE"
    if sshd_running; then
        kill "$(cat "$s/sshd.pid")" && say "sshd stopped"
    fi
    rm -f "$s/port"
}

profile_yaml() {  # name, runtimes, description, extra lines
    local s="$SSH_STATE"
    cat <<EOF
# Written by lab/arm64-qemu.sh on $(date -u +%Y-%m-%d): an emulated arm64 board on this machine (qemu-user,
# $CPU_MODEL), reached over ssh on 127.0.0.1. Outputs come from the ARM kernels (MLAS aarch64, XNNPACK arm64, OpenVINO's
# ARM CPU plugin); timings under emulation mean nothing, so its rows are marked emulated and kept out of latency
# gates and speed-ups. The runtimes are those the board's root holds (the first listed that runs a format is used).
name: $1
kind: embedded
transport: ssh
emulated: true
description: $3
threads: 1
runtimes: [$2]
ssh:
  host: 127.0.0.1
  port: $(cat "$s/port")
  user: $(id -un)
  identity_file: $s/client_key
  known_hosts: $s/known_hosts
  ssh_config: $s/ssh_config
  python: $CACHE/python3
  workdir: $s/remote
  connect_timeout_s: 10
${4:-}
EOF
}

write_profile() {
    local dir=${EDGEKIT_ARM64_PROFILES:-./devices} et=""
    if [ -z "${EDGEKIT_ARM64_PROFILES:-}" ] && [ -L ./devices ]; then
        dir="$CACHE"  # ./devices is the edgekit checkout's link to the shipped profiles: keep them clean
    fi
    [ "$EXTRA" != executorch ] || et=", executorch"
    mkdir -p "$dir"
    local board="emulated arm64 board (qemu-aarch64 $CPU_MODEL, Debian arm64 Python 3.11) over ssh on 127.0.0.1"
    profile_yaml arm64-emulated "onnxruntime, litert$et, openvino" "$board" > "$dir/arm64-emulated.yaml"
    profile_yaml arm64-emulated-openvino openvino "$board, ONNX files on OpenVINO (f32), nothing else" \
        "openvino:
  precision: f32  # pinned: on ARM CPUs with fp16 the plugin's own default is f16" > "$dir/arm64-emulated-openvino.yaml"
    say "wrote $dir/arm64-emulated.yaml and $dir/arm64-emulated-openvino.yaml"
    echo "$dir/arm64-emulated.yaml"
}

case "${1:-up}" in
    build) build ;;
    up) build; start_sshd; write_profile ;;
    stop) stop_sshd ;;
    *) die "usage: $0 [up|build|stop]" ;;
esac
