#!/usr/bin/env bash
# BootKit's boot test. Not part of ./test.sh: it downloads a Debian suite (mmdebstrap) and boots a VM under QEMU TCG,
# which takes minutes. As root (the image build chroots and sets file ownership):
#
#   scripts/bootkit-boot-test.sh [--work DIR] [--keep] [--boot-only DIR_WITH_A_BUILT_IMAGE]
#
# 1. publishes the self-contained sandstorm-edge binary and builds the sandstorm CLI;
# 2. `sandstorm bootkit build` on a sample Dockerfile (debian:12, a python http.server as the image's program) with the
#    agent → raw ext4 disk, qcow2, netboot bundle, report.json;
# 3. boots the qcow2 with QEMU (-kernel/-initrd from the netboot bundle, TCG, user networking restricted to the VM, the
#    enrolment token passed as an SMBIOS type 11 systemd credential) and reads the serial console, printing the time from
#    power-on to each milestone: kernel, systemd, the enrolment unit, multi-user.target.
# Prerequisites: Debian packages mmdebstrap squashfs-tools qemu-utils qemu-system-x86 e2fsprogs.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work=""
keep=0
boot_only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --work) work="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --boot-only) boot_only="$2"; shift 2 ;;
    *) echo "usage: $0 [--work DIR] [--keep] [--boot-only DIR]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "run as root: the image build chroots into the new root file system" >&2; exit 2; }
for tool in mmdebstrap mksquashfs qemu-img qemu-system-x86_64 mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install mmdebstrap squashfs-tools qemu-utils qemu-system-x86 e2fsprogs)" >&2; exit 2; }
done
work="${work:-$(mktemp -d)}"
mkdir -p "$work"
qemu_pid=""
cleanup() {
  [[ -n "$qemu_pid" ]] && kill "$qemu_pid" 2>/dev/null || true
  [[ $keep -eq 1 || -n "$boot_only" ]] || rm -rf "$work"
}
trap cleanup EXIT

if [[ -z "$boot_only" ]]; then
  echo "== publishing the agent and building the CLI" >&2
  dotnet publish "$repo/edge/Sandstorm.Edge/Sandstorm.Edge.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:DebugType=none -o "$work/agent" -nologo -clp:ErrorsOnly >&2
  dotnet build "$repo/tools/Sandstorm.Cli/Sandstorm.Cli.csproj" -c Release -nologo -clp:ErrorsOnly >&2

  mkdir -p "$work/ctx/site"
  echo '<h1>booted by BootKit</h1>' > "$work/ctx/site/index.html"
  cat > "$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM debian:12
RUN useradd --system --home /srv/site site
ENV GREETING="hello from bootkit"
WORKDIR /srv/site
COPY site/ ./
USER site
EXPOSE 8000
CMD ["python3", "-m", "http.server", "8000"]
DOCKERFILE

  echo "== bootkit build (downloads the suite's packages)" >&2
  dotnet "$repo/tools/Sandstorm.Cli/bin/Release/net10.0/Sandstorm.Cli.dll" bootkit build "$work/ctx/Dockerfile" \
    --out "$work/out" --name registry.example/bootkit-sample:v1 --agent "$work/agent/Sandstorm.Edge" --json > "$work/report.json"
  out="$work/out"
else
  out="$boot_only"
  cp "$out/report.json" "$work/report.json" 2>/dev/null || true
fi

python3 - "$out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
size = {a["path"]: a["bytes"] for a in r["artifacts"]}
mib = lambda b: f"{b / 1048576:.0f} MiB"
print(f"image      {r['name']}  {r['digest']}")
print(f"build      {r['buildSeconds']} s, {len(r['packages'])} packages, root file system {mib(r['rootSizeBytes'])}")
for p in ("disk.raw", "disk.qcow2", "netboot/vmlinuz", "netboot/initrd.img", "netboot/filesystem.squashfs"):
    print(f"  {p:30} {mib(size.get(p, 0))}")
PY

echo "== booting under QEMU (TCG)" >&2
console="$work/console.log"
: > "$console"
start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -M q35 -cpu max -m 1024 -smp 2 -nographic -no-reboot \
  -kernel "$out/netboot/vmlinuz" -initrd "$out/netboot/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 sandstorm.control_plane=https://control-plane.invalid" \
  -drive "file=$out/disk.qcow2,if=virtio,format=qcow2,snapshot=on" \
  -nic user,restrict=on,model=virtio-net-pci \
  -smbios "type=11,value=io.systemd.credential:sandstorm.enrollment-token=bootkit-boot-test" \
  > "$console" 2>&1 &
qemu_pid=$!

declare -A seen=()
milestones=("Linux version:kernel started" "Welcome to:systemd started" "sandstorm-edge-en:enrolment unit started" "^bootkit login|Reached target.*Multi-User:multi-user.target")
deadline=$(( $(date +%s) + 600 ))
while [[ $(date +%s) -lt $deadline ]]; do
  for m in "${milestones[@]}"; do
    pattern="${m%:*}"; label="${m##*:}"
    if [[ -z "${seen[$label]:-}" ]] && grep -qE "$pattern" "$console"; then
      seen[$label]=1
      printf '%-26s %6.1f s after power-on\n' "$label" "$(echo "$(date +%s.%N) - $start" | bc)"
    fi
  done
  [[ -n "${seen[multi-user.target]:-}" ]] && break
  kill -0 "$qemu_pid" 2>/dev/null || break
  sleep 0.5
done
echo "== what the enrolment said (console)" >&2
grep -aE "sandstorm-edge|enrol" "$console" | tail -n 5 || true
echo "console log: $console" >&2
