#!/bin/bash
# SQLite in-memory queries under emulation.
#
# sqlite3 runs under $DIME on an in-memory database (all of it in the heap):
# it fills a table of SQLITE_ROWS rows (an integer key, a derived integer
# and a 100-character text each), indexes it, aggregates, groups, updates,
# joins the table with itself, deletes a third of it and sorts by the text.
#
# Checks: every query's result equals the value computed independently by
# awk from the same formulas, and sqlite3 exits 0.
# Metric: table rows per second of the whole script:  dime-metric: N rows/s
#
# Size (environment): SQLITE_ROWS (default 200000; at least 1000).
. "$(dirname "$0")/lib.sh"
wl_need sqlite3 awk
wl_uint rows SQLITE_ROWS 200000
[[ $rows -ge 1000 ]] || wl_usage_fail "bad value for SQLITE_ROWS: '$rows' (at least 1000)"
m=1000

cat >"$wl_dir/script.sql" <<SQL
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $rows - 1)
INSERT INTO t SELECT i, (i * 7919) % $m, printf('%0100d', i * 31) FROM c;
SELECT count(*), sum(id), sum(k) FROM t;
CREATE INDEX tk ON t(k);
SELECT count(DISTINCT k), sum(c * c) FROM (SELECT k, count(*) AS c FROM t GROUP BY k);
UPDATE t SET k = (k * 3 + 1) % $m WHERE id % 2 = 0;
SELECT sum(k) FROM t;
SELECT count(*), sum(b.k) FROM t AS a JOIN t AS b ON b.id = a.k;
SELECT sum(CAST(substr(v, 95) AS INTEGER)) FROM t;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), sum(id) FROM t;
SELECT group_concat(id, ',') FROM (SELECT id FROM t ORDER BY v DESC LIMIT 5);
SQL

# The same results from the formulas, in sqlite3's list format.
awk -v n="$rows" -v m="$m" 'BEGIN {
	OFMT = "%.0f"; CONVFMT = "%.0f"
	for (i = 0; i < n; i++) { k[i] = (i * 7919) % m; s1 += i; s2 += k[i]; c[k[i]]++ }
	printf "%d|%.0f|%.0f\n", n, s1, s2
	for (x in c) { d++; sq += c[x] * c[x] }
	printf "%d|%.0f\n", d, sq
	for (i = 0; i < n; i++) { if (i % 2 == 0) k[i] = (k[i] * 3 + 1) % m; s3 += k[i] }
	printf "%.0f\n", s3
	for (i = 0; i < n; i++) s4 += k[k[i]]
	printf "%d|%.0f\n", n, s4
	for (i = 0; i < n; i++) s5 += (i * 31) % 1000000
	printf "%.0f\n", s5
	for (i = 0; i < n; i++) if (i % 3) { cnt++; s6 += i }
	printf "%d|%.0f\n", cnt, s6
	out = ""
	for (i = n - 1; got < 5; i--) if (i % 3) { out = out (got ? "," : "") i; got++ }
	print out
}' >"$wl_dir/expected"

start=$(wl_now)
# shellcheck disable=SC2086 # $DIME is a list of words
wl_fg $DIME sqlite3 -batch -bail -list :memory: <"$wl_dir/script.sql" >"$wl_dir/out" 2>"$wl_dir/err" ||
	wl_fail "sqlite3 failed (status $?): $(tail -n 3 "$wl_dir/err")"
end=$(wl_now)
cmp -s "$wl_dir/expected" "$wl_dir/out" ||
	wl_fail "wrong results: $(diff "$wl_dir/expected" "$wl_dir/out" | head -n 5 | tr '\n' ' ')"
wl_metric "$rows" "$start" "$end" rows/s
