#!/usr/bin/env bash
# Runs every test of Sandstorm: set-up (packages, npm, build), one Azurite shared by the whole run, then dotnet test.
set -euo pipefail
cd "$(dirname "$0")"
export CONFIGURATION="${CONFIGURATION:-Release}"
scripts/setup.sh

# One Azurite for the whole run, in memory, on free ports; every test fixture uses it through SANDSTORM_TEST_STORAGE.
ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r blob queue table <<<"$ports"
node_modules/.bin/azurite --silent --inMemoryPersistence --skipApiVersionCheck --disableProductStyleUrl --loose \
  --blobHost 127.0.0.1 --blobPort "$blob" --queueHost 127.0.0.1 --queuePort "$queue" --tableHost 127.0.0.1 --tablePort "$table" &
azurite_pid=$!
trap 'kill $azurite_pid 2>/dev/null || true' EXIT
for port in $blob $queue $table; do
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export SANDSTORM_TEST_STORAGE="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue/devstoreaccount1;TableEndpoint=http://127.0.0.1:$table/devstoreaccount1;"

# Test projects one after another: the hostile-code suite and the host tests each want the machine's two cores.
log=$(mktemp)
status=0
# A test that hangs is stopped after 10 minutes and named (the run goes on to the next project) instead of holding the run.
dotnet test Sandstorm.Functions.sln -c "$CONFIGURATION" --no-build -m:1 -nologo --blame-hang-timeout 10m --blame-hang-dump-type none "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over the test assemblies.
grep -E '^(Passed|Failed)! ' "$log" | sed -E 's/.*Failed: +([0-9]+), Passed: +([0-9]+), Skipped: +([0-9]+).*/\1 \2 \3/' |
  awk '{f+=$1; p+=$2; s+=$3} END {printf "%d passed, %d failed, %d skipped\n", p, f, s}'
rm -f "$log"
exit $status
