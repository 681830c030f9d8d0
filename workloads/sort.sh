#!/bin/bash
# GNU sort of a large file, in memory, under emulation.
#
# A file of SORT_LINES lines (a 10-digit key and a 36-character payload
# derived from it, 47 bytes a line) holds the keys 0..SORT_LINES-1 in a
# shuffled order; sort runs under $DIME with a buffer big enough to sort it
# in memory (its buffer is heap: emulated), LC_ALL=C.
#
# Checks: sort exits 0 and its output is, byte for byte, the lines in key
# order (generated independently; compared by SHA-256).
# Metric: input megabytes (10^6 bytes) per second:  dime-metric: N MB/s
#
# Size (environment): SORT_LINES (default 1000000).
. "$(dirname "$0")/lib.sh"
wl_need sort awk sha256sum
wl_uint lines SORT_LINES 1000000
export LC_ALL=C

# Line of key k; keys shuffled by k = i * a mod n with a prime a not dividing n.
gen='function line(k) { printf "%010d %08x%08x%08x%04x\n", k, (k * 2654435761) % 4294967296,
	(k * 40503) % 4294967296, (k * 97) % 4294967296, k % 65536 }'
a=7919
[[ $((lines % a)) -ne 0 ]] || a=7907
awk -v n="$lines" -v a="$a" "$gen"' BEGIN { for (i = 0; i < n; i++) line((i * a) % n) }' >"$wl_dir/in"
expected=$(awk -v n="$lines" "$gen"' BEGIN { for (k = 0; k < n; k++) line(k) }' | sha256sum)
bytes=$(stat -c %s "$wl_dir/in")

start=$(wl_now)
# shellcheck disable=SC2086 # $DIME is a list of words
wl_fg $DIME sort -S "$((bytes * 3 / 1024 + 1024))K" -o "$wl_dir/out" "$wl_dir/in" 2>"$wl_dir/err" ||
	wl_fail "sort failed (status $?): $(tail -n 3 "$wl_dir/err")"
end=$(wl_now)
[[ $(sha256sum <"$wl_dir/out") == "$expected" ]] ||
	wl_fail "wrong output: $(LC_ALL=C sort -c "$wl_dir/out" 2>&1 | head -n 1; wc -l <"$wl_dir/out") lines"
wl_metric "$((bytes / 1000000)).$((bytes % 1000000 / 1000))" "$start" "$end" MB/s
