#!/bin/bash
# memcached under emulation, driven by memcaslap (libmemcached-tools).
#
# memcached runs under $DIME; the clients run natively. First MEMC_CHECK_KEYS
# check keys with values unique per key are stored; then memcaslap
# (MEMC_CLIENTS concurrent clients, one thread) runs MEMC_OPS operations,
# half sets and half gets (YCSB's 50/50, as in DiME's study), with 32-byte
# keys and MEMC_VALUE-byte values, verifying the value of every get
# (--verify=1). memcaslap sets a new object each time and gets objects it
# set before: the dataset grows to MEMC_OPS/2 objects.
#
# Checks: memcaslap succeeded and reported no failed verification, no
# verify or get miss; the server counted the gets and sets memcaslap sent;
# every check key still holds its value; the server exits cleanly.
# Metric: memcaslap's operations per second:  dime-metric: N ops/s
#
# Sizes (environment): MEMC_OPS (default 300000), MEMC_VALUE (bytes, 256),
# MEMC_CHECK_KEYS (10000), MEMC_CLIENTS (10).
. "$(dirname "$0")/lib.sh"
wl_need memcached memcaslap python3 awk
wl_uint value MEMC_VALUE 256
wl_uint check_keys MEMC_CHECK_KEYS 10000
wl_uint ops MEMC_OPS 300000
wl_uint clients MEMC_CLIENTS 10
# Room for everything: an eviction would be a lost value.
mem_mb=$(((ops / 2 + check_keys) * (value + 200) / 1048576 + 64))

user=()
[[ $(id -u) -eq 0 ]] && user=(-u nobody)
wl_start_server port memcached "${user[@]}" -l 127.0.0.1 -p @PORT@ -U 0 -t 2 -m "$mem_mb"
server=$wl_server

# check set|verify: stores or compares the check keys (text protocol); in
# verify mode prints the server's cmd_get and cmd_set counts after the check.
check() {
	python3 - "$1" "$port" "$check_keys" "$value" <<'PY'
import socket, sys
mode, port, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def val(i):
    return (b"%09d;" % i * (d // 10 + 1))[:d]
def stats():
    s.sendall(b"stats\r\n")
    out = {}
    while (line := f.readline().split()) != [b"END"]:
        out[line[1].decode()] = line[2].decode()
    return out
if mode == "set":
    for i in range(n):
        s.sendall(b"set chk:%d 0 0 %d\r\n%s\r\n" % (i, d, val(i)))
        if f.readline() != b"STORED\r\n":
            sys.exit("check key %d not stored" % i)
    sys.exit(0)
before = stats()
bad = 0
for i in range(n):
    s.sendall(b"get chk:%d\r\n" % i)
    head = f.readline()
    if head == b"END\r\n":
        bad += 1
        continue
    data = f.read(int(head.split()[3]) + 2)[:-2]
    if f.readline() != b"END\r\n" or data != val(i):
        bad += 1
if bad:
    sys.exit("%d check keys lost or wrong" % bad)
print(before["cmd_get"], before["cmd_set"])
PY
}
wl_fg check set || wl_fail "storing the check keys failed"

printf 'key\n32 32 1\nvalue\n%d %d 1\ncmd\n0 0.5\n1 0.5\n' "$value" "$value" >"$wl_dir/slap.cfg"
wl_fg memcaslap -s "127.0.0.1:$port" -F "$wl_dir/slap.cfg" -T 1 -c "$clients" -x "$ops" \
	--verify=1 >"$wl_dir/slap" 2>&1 || wl_fail "memcaslap failed: $(tail -n 3 "$wl_dir/slap")"
field() {
	sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$wl_dir/slap" | tail -n 1
}
for f in verify_failed verify_misses get_misses; do
	[[ $(field "$f") == 0 ]] || wl_fail "memcaslap: $f: '$(field "$f")'"
done
tps=$(sed -n 's/.*TPS: *\([0-9.]*\).*/\1/p' "$wl_dir/slap" | tail -n 1)
[[ -n $tps ]] || wl_fail "memcaslap reported no rate: $(tail -n 3 "$wl_dir/slap")"

counts=$(wl_fg check verify) || wl_fail "verification failed"
read -r got set <<<"$counts"
[[ $got == "$(field cmd_get)" && $set == $(($(field cmd_set) + check_keys)) ]] ||
	wl_fail "server counted $got gets, $set sets; memcaslap sent $(field cmd_get), $(field cmd_set) (+$check_keys check sets)"
wl_stop_server "$server"
echo "dime-metric: $tps ops/s"
