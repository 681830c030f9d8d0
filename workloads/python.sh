#!/bin/bash
# CPython, dict and list heavy, under emulation.
#
# python3 (Debian's /usr/bin/python3; PYTHONMALLOC=malloc, which dime run
# sets, puts its objects in the emulated heap) runs under $DIME: it builds a
# dict of PY_ITEMS string keys to two-element lists, sorts the lists by
# their second element, folds the sorted order into a checksum, deletes
# every other key and sums what is left.
#
# Checks: the three numbers printed equal the ones awk and sort compute
# independently from the same formulas; python3 exits 0.
# Metric: items per second:  dime-metric: N items/s
#
# Size (environment): PY_ITEMS (default 300000; below 1000003).
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
[[ -x $py ]] || py=python3
wl_need "$py" awk sort
wl_uint items PY_ITEMS 300000
# The second elements are i * 7919 mod a prime: all distinct below it.
[[ $items -lt 1000003 ]] || wl_usage_fail "bad value for PY_ITEMS: '$items' (below 1000003)"

cat >"$wl_dir/prog.py" <<'PY'
import sys
n = int(sys.argv[1])
d = {}
for i in range(n):
    d["k%d" % i] = [i, (i * 7919) % 1000003]
order = sorted(d.values(), key=lambda e: e[1])
s = 0
for pos, e in enumerate(order):
    s = (s + pos * e[0]) % 4294967296
for i in range(0, n, 2):
    del d["k%d" % i]
print(len(d), sum(v[1] for v in d.values()), s)
PY

start=$(wl_now)
# shellcheck disable=SC2086 # $DIME is a list of words
wl_fg $DIME "$py" "$wl_dir/prog.py" "$items" >"$wl_dir/out" 2>"$wl_dir/err" ||
	wl_fail "python3 failed (status $?): $(tail -n 3 "$wl_dir/err")"
end=$(wl_now)

left=$((items / 2))
sum_left=$(awk -v n="$items" 'BEGIN { for (i = 1; i < n; i += 2) s += (i * 7919) % 1000003; printf "%.0f", s }')
fold=$(awk -v n="$items" 'BEGIN { for (i = 0; i < n; i++) print (i * 7919) % 1000003, i }' |
	sort -n -k1,1 | awk '{ s = (s + (NR - 1) * $2) % 4294967296 } END { printf "%.0f", s }')
expected="$left $sum_left $fold"
[[ $(cat "$wl_dir/out") == "$expected" ]] ||
	wl_fail "wrong results: '$(head -c 100 "$wl_dir/out")', expected '$expected'"
wl_metric "$items" "$start" "$end" items/s
