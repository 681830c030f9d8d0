#!/bin/sh
# The demo: the same key-value workload natively and under dime with
# shrinking local memory. The checksums must all match; throughput falls as
# less of the working set stays local.
set -e
build=${1:-build}
records=200000 ops=300000
native=$("$build/demo-workload" $records $ops)
echo "native:                       $native"
for local in 5000 3000 1500; do
	out=$("$build/dime" run --local-pages $local --latency-ns 1000 \
		--bandwidth-bps 10000000000 --stats-json "$build/demo-$local.json" -- \
		"$build/demo-workload" $records $ops)
	faults=$(sed -n 's/.*"remote_faults": *\([0-9]*\).*/\1/p' "$build/demo-$local.json")
	printf 'dime --local-pages %-6s %s  remote faults %s\n' "$local" "$out" "$faults"
	[ "$(echo "$out" | cut -d' ' -f2)" = "$(echo "$native" | cut -d' ' -f2)" ] ||
		{ echo "demo: checksum differs under dime" >&2; exit 1; }
done
echo "checksums match; the full summary of one run:"
"$build/dime" run --stats --local-pages 2000 --latency-ns 1000 --bandwidth-bps 1000000000 -- \
	"$build/demo-workload" $records $ops
