#!/bin/sh
# make bench-policies: the same real program under each replacement policy.
# usage: bench/policies.sh BUILD_DIR
#
# The program is GNU sort on a shuffled file of $LINES numbers (about
# 7 bytes a line) in an 8 MiB buffer, with $LOCAL local pages (about a
# quarter of its heap), $LATENCY ns latency and 1 Gb/s. For each policy
# (the built-ins and the example plug-in) it prints and writes to
# BUILD_DIR/bench/policies.csv: remote faults, soft faults, evictions, wall
# time, the policy's own time per fault (time in its callbacks / faults),
# and what a soft fault costs (handling time of soft faults / soft faults).
# The output is checked against sort without dime. Not part of the tests.
set -e
build=${1:-build}
LINES=${LINES:-1000000}
LOCAL=${LOCAL:-1500}
LATENCY=${LATENCY:-1000}
REPS=${BENCH_REPS:-1}
dir=$build/bench
mkdir -p "$dir"
in=$dir/policies-in.txt
want=$dir/policies-want.txt
got=$dir/policies-got.txt
csv=$dir/policies.csv
json=$dir/policies.json

seq 1 "$LINES" | sort -R --random-source=/dev/zero > "$in"
sort -n -S 8M "$in" > "$want"

# A number from the stats JSON.
num() { sed -n "s/^ *\"$1\": \\([0-9]*\\),*\$/\\1/p" "$json"; }

echo "policy,rep,remote_faults,soft_faults,first_touch_faults,evictions,wall_ns,policy_ns,soft_fault_ns,handling_ns" > "$csv"
printf '%-8s %12s %12s %12s %9s %14s %14s\n' policy remote soft evictions wall_s \
	"policy ns/flt" "us/soft fault"
for pol in fifo random clock lru "$build/tests/plugins/lfu.so"; do
	name=$(basename "$pol" .so)
	rep=0
	while [ "$rep" -lt "$REPS" ]; do
		rep=$((rep + 1))
		"$build/dime" run --local-pages "$LOCAL" --latency-ns "$LATENCY" --policy "$pol" \
			--stats-json "$json" -- sort -n -S 8M "$in" -o "$got"
		cmp -s "$got" "$want" || { echo "bench-policies: $name: wrong output" >&2; exit 1; }
		remote=$(num remote_faults); soft=$(num soft_faults); first=$(num first_touch_faults)
		ev=$(num evictions); wall=$(num wall_ns); pns=$(num policy_ns)
		sns=$(num soft_fault_ns); hns=$(num handling_ns)
		echo "$name,$rep,$remote,$soft,$first,$ev,$wall,$pns,$sns,$hns" >> "$csv"
		awk -v n="$name" -v r="$remote" -v s="$soft" -v f="$first" -v e="$ev" -v w="$wall" \
			-v p="$pns" -v sn="$sns" 'BEGIN {
			faults = r + s + f
			printf "%-8s %12d %12d %12d %9.3f %14.1f %14s\n", n, r, s, e, w / 1e9,
				faults ? p / faults : 0, s ? sprintf("%.2f", sn / s / 1000) : "-" }'
	done
done
echo "(written to $csv; the machine is shared: wall times are indicative only)"
