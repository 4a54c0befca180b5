#!/usr/bin/env bash
# Builds the npm packages of the edge agent: @sandstorm/edge-agent (a small Node launcher) and one
# @sandstorm/edge-agent-<os>-<cpu> per runtime identifier, each holding the self-contained single-file sandstorm-edge
# binary (dotnet publish --self-contained -p:PublishSingleFile=true), packed with `npm pack` into the output directory.
#
#   scripts/pack-edge-agent-npm.sh [--out DIR] [--version X.Y.Z] [--rid linux-x64] [--rid linux-arm64]
#
# Without --rid: linux-x64 and linux-arm64. Prints the path of each tarball it made, the launcher's last.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/artifacts/npm"
version="0.1.0"
rids=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --rid) rids+=("$2"); shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--version X.Y.Z] [--rid RID]..." >&2; exit 2 ;;
  esac
done
[[ ${#rids[@]} -gt 0 ]] || rids=(linux-x64 linux-arm64)

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for rid in "${rids[@]}"; do
  case "$rid" in
    linux-x64) os=linux; cpu=x64 ;;
    linux-arm64) os=linux; cpu=arm64 ;;
    *) echo "unsupported runtime identifier: $rid (linux-x64, linux-arm64)" >&2; exit 2 ;;
  esac

  dotnet publish "$repo/edge/Sandstorm.Edge/Sandstorm.Edge.csproj" -c Release -r "$rid" --self-contained \
    -p:PublishSingleFile=true -p:DebugType=none -o "$work/publish-$rid" -nologo -clp:ErrorsOnly >&2

  pkg="$work/pkg-$rid"
  mkdir -p "$pkg/bin"
  sed -e "s/@PLATFORM@/$os-$cpu/g" -e "s/@VERSION@/$version/g" -e "s/@OS@/$os/g" -e "s/@CPU@/$cpu/g" \
    "$repo/packaging/npm/platform/package.json.in" > "$pkg/package.json"
  install -m 0755 "$work/publish-$rid/Sandstorm.Edge" "$pkg/bin/sandstorm-edge"
  (cd "$pkg" && npm pack --silent --pack-destination "$out" | sed "s#^#$out/#")
done

# The launcher names every platform package as an optional dependency of the same version.
main="$work/pkg-main"
cp -r "$repo/packaging/npm/edge-agent" "$main"
node -e '
  const fs = require("fs");
  const file = process.argv[1], version = process.argv[2];
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  pkg.version = version;
  for (const name of Object.keys(pkg.optionalDependencies)) pkg.optionalDependencies[name] = version;
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$main/package.json" "$version"
chmod 0755 "$main/bin/sandstorm-edge.js"
(cd "$main" && npm pack --silent --pack-destination "$out" | sed "s#^#$out/#")
