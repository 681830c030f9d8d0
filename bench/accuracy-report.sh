#!/bin/sh
# make accuracy-report: dime's accuracy and overhead report.
# usage: bench/accuracy-report.sh [BUILD_DIR]   (BENCH_REPS repetitions, default 3)
#
# Runs dimebench (every row of `make bench`) under bench/zram-baseline.sh
# (the cgroup + swap-on-zram baseline when run as root with zram and a
# memory cgroup; one line saying what is missing otherwise) and writes
#   docs/results/accuracy.md        the report: machine, load, tables
#   docs/results/accuracy.csv       every row (section, measurement, value...)
#   docs/results/accuracy-cdf.png   per-fault times of the cyclic sweep,
#                                   dime and zram (gnuplot, when present)
# The numbers come from this run on this machine; the report says when and
# under which load. Not part of the tests; about five minutes.
set -eu

# The hypervisor as the guest kernel named it at boot (dmesg: "PVM", "KVM",
# ...), else as lscpu reports it.
hypervisor() {
	local hv
	hv=$(dmesg 2>/dev/null | sed -n 's/.*Hypervisor detected: *//p' | head -1)
	[ -n "$hv" ] || hv=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
	echo "${hv:-no hypervisor}"
}

build=${1:-build}
reps=${BENCH_REPS:-3}
out=docs/results
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(uptime)
mkdir "$tmp/samples"
DIME_BENCH_SAMPLES="$tmp/samples" bench/zram-baseline.sh "$build/bench/dimebench" -r "$reps" \
	-o "$out/accuracy.csv" -m "$tmp/tables.md" >"$tmp/console.txt" 2>"$tmp/stderr.txt" || {
	cat "$tmp/stderr.txt" >&2
	echo "accuracy-report: dimebench failed" >&2
	exit 1
}
load_end=$(uptime)
cat "$tmp/console.txt"
grep -v '^dimebench: repetition\|^dimebench: zram baseline: ' "$tmp/stderr.txt" >&2 || true

# Distribution of the cyclic sweep's per-access times (the last
# repetition): one sorted column per memory, plotted as CDFs.
plot=""
cdf() { # FILE -> "us fraction" lines
	sort -n "$1" | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i] / 1000, i / NR }'
}
s=$tmp/samples
lat_case=$(ls "$s" | sed -n 's/^pattern-thread-cyclic-\([0-9]*\)-\([0-9]*\)\.txt$/\1-\2/p' | head -1)
if command -v gnuplot >/dev/null && [ -n "$lat_case" ]; then
	set --
	for f in "pattern-thread-cyclic-$lat_case:dime thread" "pattern-signal-cyclic-$lat_case:dime signal" \
		"zram-cyclic-random:zram swap" "zram-cyclic-sparse:zram swap, compressible pages"; do
		name=${f%%:*} title=${f#*:}
		[ -s "$s/$name.txt" ] || continue
		cdf "$s/$name.txt" >"$tmp/$name.cdf"
		set -- "$@" "'$tmp/$name.cdf' using 1:2 with lines lw 2 title '$title'"
	done
	cfg_us=$(awk -v l="${lat_case%-*}" -v b="${lat_case#*-}" 'BEGIN { printf "%.2f", (2 * l + 4096 * 8 * 1e9 / b) / 1000 }')
	plots=$(printf '%s, ' "$@")
	gnuplot <<GP && plot="accuracy-cdf.png"
set terminal pngcairo size 900,520 noenhanced
set output '$out/accuracy-cdf.png'
set title 'Cyclic sweep over 2N pages, N local/resident: time of each access, measured inside the program'
set xlabel 'access time (us, log scale)'
set ylabel 'fraction of accesses'
set logscale x
set xrange [1:5000]
set yrange [0:1]
set key right center
set grid
set arrow from $cfg_us, graph 0 to $cfg_us, graph 1 nohead dashtype 2 lc rgb 'black'
set label 'dime configured: $cfg_us us' at $cfg_us, graph 0.3 offset 0.5,0
plot ${plots%, }
GP
fi

# The headline numbers of the CSV, as a list (computed, not written by hand).
findings() {
	awk -F'"' '
	function num(field) { split(field, a, ","); return a[2] }
	{ what = $2; value = num($3); ratio = num($5); note = $(NF - 1) }
	what == "kernel minor fault, median" { minor = value }
	what ~ /^case .* failed in / { failed = failed "- The zram baseline'"'"'s " what ".\n" }
	what ~ /^remote fault at latency 0, (thread|signal), median$/ {
		split(what, w, ", "); over[w[2]] = value; overr[w[2]] = ratio }
	what ~ /^fetch, .*, mean$/ {
		split(what, w, ", "); key = w[2] ", " w[3] ", " w[4]
		match(note, /configured [0-9]+/); cfg = substr(note, RSTART + 11, RLENGTH - 11)
		match(note, /floor [0-9]+/); fl = substr(note, RSTART + 6, RLENGTH - 6)
		above[key] = cfg + 0 > 1.5 * fl; mode[key] = w[2]; meanr[key] = ratio }
	what ~ /^fetch, .*, median$/ { split(what, w, ", "); medr[w[2] ", " w[3] ", " w[4]] = ratio }
	what ~ /^fetch, .*, p99$/ { split(what, w, ", "); p99r[w[2] ", " w[3] ", " w[4]] = ratio }
	what ~ /^plain busy-wait of the fetch time, .*, p99$/ { split(what, w, ", "); waitr[w[2] ", " w[3]] = ratio }
	what ~ /^plain busy-wait of the fetch time, .*, mean$/ { split(what, w, ", "); waitm[w[2] ", " w[3]] = ratio }
	what ~ /^streaming bandwidth/ { split(what, w, ", "); bw[w[2] " " w[3]] = ratio }
	what ~ /^zram swap.*: minor faults per access$/ { zminor[what] = value; if (value + 0 > maxminor) maxminor = value + 0 }
	what ~ /^zram swap.*: major faults per access$/ { zmajor = 1 }
	what ~ /: (time per fault|slow accesses, median|slow accesses, p99|faults per access)$/ {
		cmp[what] = value; cmpr[what] = ratio
		if (note ~ /^configured [0-9]+ ns$/) { split(note, cf, " "); pattern_cfg = cf[2] } }
	END {
		printf "- dime'"'"'s own cost of a fault at zero delay (median): %.1f us in thread mode, %.1f us in signal mode, %.2fx and %.2fx the kernel minor fault (%.2f us) of the same run.\n", over["thread"] / 1000, over["signal"] / 1000, overr["thread"], overr["signal"], minor / 1000
		for (m = 0; m < 2; m++) {
			md = m ? "signal" : "thread"; n = 0; lo_med = lo_mean = lo_p99 = lo_w = lo_wm = 1e9; hi_med = hi_mean = hi_p99 = hi_w = hi_wm = 0
			for (k in above) if (above[k] && mode[k] == md) {
				n++
				wk = substr(k, length(md) + 3)
				if (waitr[wk] < lo_w) lo_w = waitr[wk]; if (waitr[wk] > hi_w) hi_w = waitr[wk]
				if (waitm[wk] < lo_wm) lo_wm = waitm[wk]; if (waitm[wk] > hi_wm) hi_wm = waitm[wk]
				if (medr[k] < lo_med) lo_med = medr[k]; if (medr[k] > hi_med) hi_med = medr[k]
				if (meanr[k] < lo_mean) lo_mean = meanr[k]; if (meanr[k] > hi_mean) hi_mean = meanr[k]
				if (p99r[k] < lo_p99) lo_p99 = p99r[k]; if (p99r[k] > hi_p99) hi_p99 = p99r[k]
			}
			if (n) printf "- Fetch time seen by the program, %s mode, the %d configurations at least 1.5x above the floor: median %.3f-%.3f x configured, mean %.3f-%.3f, p99 %.2f-%.2f; a plain busy-wait of the same times with no dime, timed the same way, had a mean of %.3f-%.3f and a p99 of %.2f-%.2f (what the machine itself adds to a wait).\n", md, n, lo_med, hi_med, lo_mean, hi_mean, lo_p99, hi_p99, lo_wm, hi_wm, lo_w, hi_w
		}
		printf "- Streaming bandwidth achieved / configured: thread %.3f (250M), %.3f (1G), %.3f (10G); signal %.3f (250M), %.3f (1G), %.3f (10G). One stream reaches at most a page per floor: the 10G rows, and on a guest whose floor is near 33 us the 1G rows, are above it.\n", bw["thread 250M b/s"], bw["thread 1G b/s"], bw["thread 10G b/s"], bw["signal 250M b/s"], bw["signal 1G b/s"], bw["signal 10G b/s"]
		d = "dime thread, fifo, cyclic: "; z = "zram swap, cyclic: "; c = "zram swap, compressible pages, cyclic: "; s = "dime signal, fifo, cyclic: "
		if ((d "slow accesses, median") in cmp)
			printf "- Cyclic sweep, every access a fault: dime configured at %.2f us gave a median of %.2f us (thread) and %.2f us (signal), %.3fx and %.3fx the configured time.\n", pattern_cfg / 1000, cmp[d "slow accesses, median"] / 1000, cmp[s "slow accesses, median"] / 1000, cmpr[d "slow accesses, median"], cmpr[s "slow accesses, median"]
		if ((z "slow accesses, median") in cmp)
			printf "- The same sweep with swap on zram: median %.2f us per fault (incompressible pages) and %.2f us (compressible), not configurable; p99 %.0f us and %.0f us, and %.1f us and %.1f us per fault on average: reclaim in the faulting thread makes the tail.\n", cmp[z "slow accesses, median"] / 1000, cmp[c "slow accesses, median"] / 1000, cmp[z "slow accesses, p99"] / 1000, cmp[c "slow accesses, p99"] / 1000, cmp[z "time per fault"] / 1000, cmp[c "time per fault"] / 1000
		if (zmajor && maxminor < 0.001)
			printf "- Counting: with zram every swap-in was a major fault and no minor faults (swap-cache hits) were counted, so one fault is one page, as in dime: zram is a synchronous swap device, for which the kernel reads the faulting page alone, without readahead (vm.page-cluster does not apply).\n"
		else if (zmajor)
			printf "- Counting: with zram up to %.3f minor faults per access (pages found in the swap cache, brought by readahead) came on top of the major faults: the kernel counts some page arrivals as cheap faults that dime would count as remote faults.\n", maxminor
		printf "%s", failed
		h = "hotcold: faults per access"
		if (("zram swap, " h) in cmp)
			printf "- Hot/cold pattern, faults per access: zram (the kernel'"'"'s LRU) %.3f, dime FIFO %.3f (signal), dime lru %.3f (remote + soft).\n", cmp["zram swap, " h], cmp["dime signal, fifo, " h], cmp["dime signal, lru, " h]
	}' "$1"
}

# Stalls in the cyclic sweep (last repetition): accesses over 100 us, how
# often and how long, and how regularly they come (the median distance
# between two): reclaim batches come at a fixed distance, preemption by
# other load does not.
stalls() {
	med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
	for f in "pattern-thread-cyclic-$lat_case:dime thread" "pattern-signal-cyclic-$lat_case:dime signal" \
		"zram-cyclic-random:zram swap" "zram-cyclic-sparse:zram swap, compressible pages"; do
		name=${f%%:*} title=${f#*:} file=$s/${f%%:*}.txt
		[ -s "$file" ] || continue
		total=$(wc -l <"$file")
		n=$(awk '$1 > 100000' "$file" | wc -l)
		if [ "$n" -eq 0 ]; then
			echo "- Cyclic sweep, $title: no access over 100 us in $total."
			continue
		fi
		long=$(awk '$1 > 100000 { print $1 / 1000 }' "$file" | med)
		gap=$(awk '$1 > 100000 { if (p) print NR - p; p = NR }' "$file" | med)
		echo "- Cyclic sweep, $title: $n of $total accesses over 100 us (median $(printf '%.0f' "$long") us); median distance between two: $gap accesses."
	done
}

# The report.
{
	cat <<'HEAD'
# Accuracy and overhead of dime on this machine

What a program running under dime measures itself, against what dime was
configured to emulate; what dime's own fault handling costs, against the
kernel's cheapest fault; and the do-it-yourself baseline people use today for
"slow memory" (a memory cgroup limit with swap on zram) on the same access
patterns, in the same run. Every number below comes from one run of
`make accuracy-report` on the machine described here; the CSV next to this
file (`accuracy.csv`) holds every row.

HEAD
	echo "## Regenerate"
	echo
	echo '    sudo make accuracy-report                 # BENCH_REPS=5 for more repetitions'
	echo
	echo "As root with zram (built in or loadable) and a memory cgroup controller"
	echo "(cgroup v2 with memory delegated at the root, or a v1 memory hierarchy) the"
	echo "zram rows are measured; otherwise they are skipped with one line saying what is"
	echo "missing. \`make bench\` prints the same rows (build/bench/results.csv)."
	echo "The zram device and the cgroup are temporary (\`bench/zram-baseline.sh\`):"
	echo "created for the run and removed after it, even when it fails."
	echo
	echo "## This run"
	echo
	echo "- Date: $date_start, $reps repetitions; every value is the median over them."
	hv=$(hypervisor)
	echo "- Machine: $(uname -srm); $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPUs ($hv guest); $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM."
	if [ "$hv" = PVM ]; then
		echo "- PVM shadows the guest's page tables in the host: every page-table change"
		echo "  (a fault, a page moved or zapped, a TLB flush) costs a trip to the host."
		echo "  The kernel's own minor fault is several times what it is on a hardware-"
		echo "  assisted VM, and so is every page dime moves; compare ratios, not times."
	fi
	echo "- Load at the start: \`$(echo "$load_start" | sed 's/^ *//')\`"
	echo "- Load at the end: \`$(echo "$load_end" | sed 's/^ *//')\`"
	echo "- The machine is shared with other work: the load above is other processes,"
	echo "  which take vCPUs from the measured program and its handler threads. Tails"
	echo "  (p99) and means suffer first, then medians: dime's delay debt shortens the"
	echo "  faults after a late one (each by at most half its wait), so under heavy load"
	echo "  the median falls below the configured time while the mean stays above it"
	echo "  (debt beyond 1 ms is forgiven). Compare runs by their load."
	zinfo=$(sed -n 's/^dimebench: zram baseline: //p' "$tmp/stderr.txt" | head -1)
	skipped=$(sed -n 's/^dimebench: zram baseline skipped: //p' "$tmp/stderr.txt" | head -1)
	if [ -n "$skipped" ]; then
		echo "- zram baseline: **skipped** ($skipped)."
	else
		echo "- zram baseline: $zinfo."
	fi
	echo
	cat <<'READ'
## How to read it

- **Fetch time** is measured by the program itself: each access is timed with
  `clock_gettime(CLOCK_MONOTONIC)` (the kernel's clock, not the tick counter dime
  busy-waits on). A configured fetch time below dime's *floor* (its own cost of a
  fault, measured at start-up) cannot be met: those faults take about the floor,
  which the tables show. Above the floor the median should equal the configured
  time; the mean includes what the machine's other load adds, which dime pays back
  from later faults (its delay debt) only up to 1 ms per excursion.
- **Overhead** is dime's own cost of a fault at zero emulated delay, against a
  kernel minor fault (the floor an in-kernel emulator such as DiME pays) measured
  in the same repetition.
- **The zram baseline** runs the same program on plain anonymous memory in a
  memory cgroup whose limit holds the same number of pages as dime's local budget,
  the rest swapped to zram. Its cost per fault is whatever the kernel's swap-in,
  decompression and reclaim cost on this machine: it cannot be configured, it
  depends on the data (incompressible or compressible pages), and reclaim runs in
  the faulting thread in batches, so a few faults pay for many pages' compression
  (the tail). It counts faults by the kernel's rules (major = swap-in, minor = found
  in the swap cache) and replaces pages by the kernel's LRU, not FIFO: on the
  hot/cold pattern it keeps the hot pages where dime's FIFO does not (dime's `lru`
  policy does, at the price of soft faults). A limit this tight can also end
  the program: when reclaim makes too little progress (a loaded machine), the
  cgroup's OOM killer kills it although swap has room; the tables say in how
  many repetitions that happened.
READ
	echo "## Findings of this run"
	echo
	findings "$out/accuracy.csv"
	stalls
	echo
	echo "## Results"
	cat "$tmp/tables.md"
	if [ -n "$plot" ]; then
		echo
		echo "### Distribution"
		echo
		echo "Every access of the cyclic sweep (each one a fault) in the last repetition, as the"
		echo "program measured it:"
		echo
		echo "![per-access times, dime and zram](accuracy-cdf.png)"
	fi
} >"$out/accuracy.md"
echo "accuracy-report: wrote $out/accuracy.md, $out/accuracy.csv${plot:+, $out/$plot}"
