#!/bin/bash
# Redis under emulation, driven by redis-benchmark (DiME's Redis study).
#
# redis-server runs under $DIME; the client, redis-benchmark, runs natively.
# The server is loaded with REDIS_KEYS keys key:NNNNNNNNNNNN of
# REDIS_VALUE bytes (the key space redis-benchmark -r uses) plus
# REDIS_CHECK_KEYS check keys whose values are unique per key, then
# REDIS_CLIENTS clients issue REDIS_OPS SETs, then REDIS_OPS GETs, at random
# keys of that key space (a 50/50 SET/GET mix over the whole dataset).
#
# Checks: redis-benchmark succeeded; the server served exactly the SETs and
# GETs sent (INFO commandstats); afterwards every key holds its value (a Lua
# script compares them all on the server: a check key its own value, a
# benchmark key either the loaded value or the one value redis-benchmark
# writes), no key is missing or extra; the server exits cleanly.
# Metric: requests per second over both phases:  dime-metric: N ops/s
#
# Sizes (environment): REDIS_KEYS (default 100000), REDIS_VALUE (bytes,
# 256), REDIS_CHECK_KEYS (10000), REDIS_OPS (200000), REDIS_CLIENTS (10).
. "$(dirname "$0")/lib.sh"
wl_need redis-server redis-cli redis-benchmark awk
wl_uint keys REDIS_KEYS 100000
wl_uint value REDIS_VALUE 256
wl_uint check_keys REDIS_CHECK_KEYS 10000
wl_uint ops REDIS_OPS 200000
wl_uint clients REDIS_CLIENTS 10

wl_start_server port redis-server --port @PORT@ --bind 127.0.0.1 --save '' \
	--appendonly no --dir "$wl_dir" --daemonize no --protected-mode no --logfile ''
server=$wl_server
cli() {
	wl_fg redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# The value of check key i: its number repeated, so that any two differ.
lua_common="local n, m, d = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local x = string.rep('x', d)
local function val(i) return string.sub(string.rep(string.format('%09d;', i), math.ceil(d / 10)), 1, d) end"
cli EVAL "$lua_common
for i = 0, n - 1 do redis.call('SET', string.format('key:%012d', i), x) end
for i = 0, m - 1 do redis.call('SET', 'chk:' .. i, val(i)) end
return n + m" 0 "$keys" "$check_keys" "$value" >"$wl_dir/load" 2>&1 ||
	wl_fail "loading failed: $(head -c 200 "$wl_dir/load")"
[[ $(cat "$wl_dir/load") == $((keys + check_keys)) ]] ||
	wl_fail "loading failed: $(head -c 200 "$wl_dir/load")"
cli CONFIG RESETSTAT >/dev/null || wl_fail "CONFIG RESETSTAT failed"

wl_fg redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" -n "$ops" -r "$keys" -d "$value" \
	-t set,get --csv >"$wl_dir/bench" 2>"$wl_dir/bench.err" ||
	wl_fail "redis-benchmark failed: $(tail -n 3 "$wl_dir/bench.err")"
# --csv: a header, then "SET","rps",... and "GET","rps",...
read -r set_rps get_rps < <(awk -F'"' '$2 == "SET" { s = $4 } $2 == "GET" { g = $4 }
	END { print s + 0, g + 0 }' "$wl_dir/bench")
awk -v s="$set_rps" -v g="$get_rps" 'BEGIN { exit !(s > 0 && g > 0) }' ||
	wl_fail "redis-benchmark reported no rate: $(head -c 300 "$wl_dir/bench")"

# Every request was served, as the command it was (no errors, no losses).
cli INFO commandstats >"$wl_dir/stats" || wl_fail "INFO failed"
calls() {
	sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" "$wl_dir/stats" | tr -d '\r'
}
[[ $(calls set) == "$ops" && $(calls get) == "$ops" ]] ||
	wl_fail "served $(calls set) SETs and $(calls get) GETs for $ops of each"
grep -q 'failed_calls=[1-9]' "$wl_dir/stats" && wl_fail "failed calls: $(grep failed_calls=[1-9] "$wl_dir/stats")"

bad=$(cli EVAL "$lua_common
local bad, b = 0, nil
for i = 0, n - 1 do
  local v = redis.call('GET', string.format('key:%012d', i))
  if v ~= x then
    if not b and type(v) == 'string' and #v == d then b = v end
    if v ~= b then bad = bad + 1 end
  end
end
for i = 0, m - 1 do if redis.call('GET', 'chk:' .. i) ~= val(i) then bad = bad + 1 end end
return bad" 0 "$keys" "$check_keys" "$value" 2>&1) || wl_fail "verification failed: $bad"
[[ $bad == 0 ]] || wl_fail "$bad keys hold a wrong value or are missing"
size=$(cli DBSIZE) || wl_fail "DBSIZE failed"
[[ $size == $((keys + check_keys)) ]] || wl_fail "$size keys instead of $((keys + check_keys))"
wl_stop_server "$server"

awk -v s="$set_rps" -v g="$get_rps" -v n="$ops" \
	'BEGIN { printf "dime-metric: %.1f ops/s\n", 2 * n / (n / s + n / g) }'
