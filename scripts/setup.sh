#!/usr/bin/env bash
# Installs what Sandstorm needs on a fresh Debian machine and builds it. Safe to run again: it skips what is there.
#   - Debian packages: the sandbox runtimes (bubblewrap, runc, gVisor runsc, podman, qemu-system-x86 for the microVM runtime), libgomp1 (LightGBM), bpftrace (Shield) and
#     node-typescript (the TypeScript compiler the sandboxes load from /usr to run TypeScript offline) and chromium (the console's
#     browser tests drive it through Playwright)
#   - npm packages from package-lock.json: Azurite (storage emulator), the official cloud SDKs used by tests and Chart.js (the
#     console's charts, embedded into the API assembly by the build that follows)
#   - dotnet build of the solution (Release by default; CONFIGURATION=Debug to change)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(bubblewrap runc runsc podman conmon uidmap slirp4netns fuse-overlayfs python3-seccomp libgomp1 bpftrace node-typescript chromium qemu-system-x86)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then apt=(apt-get); else apt=(sudo apt-get); fi
  "${apt[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/azurite ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: dotnet build (${CONFIGURATION:-Release})"
dotnet build Sandstorm.Functions.sln -c "${CONFIGURATION:-Release}" -nologo -clp:ErrorsOnly
