#!/bin/bash
# xz compression with a large dictionary under emulation.
#
# The input, XZ_MB megabytes (2^20 bytes) of generated text, repeats its
# first half in its second half with one word in 24 capitalised, so compressing it well
# needs a dictionary that spans half of it: xz -T1 runs under $DIME with
# preset 6 and a dictionary of XZ_DICT_MB MiB (its match finder and window
# are heap: emulated).
#
# Checks: xz exits 0; its output decompresses (natively) to the input,
# byte for byte (SHA-256), and is smaller than 60% of it.
# Metric: input megabytes (10^6 bytes) per second:  dime-metric: N MB/s
#
# Sizes (environment): XZ_MB (default 16), XZ_DICT_MB (default 64).
. "$(dirname "$0")/lib.sh"
wl_need xz awk sha256sum
wl_uint mb XZ_MB 16
wl_uint dict XZ_DICT_MB 64

# Words from a small vocabulary picked by an LCG: compressible, not trivial.
half=$((mb * 1048576 / 2))
awk -v n="$half" 'BEGIN {
	split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega", w)
	x = 12345
	while (len < n) {
		x = (x * 1103515245 + 12345) % 2147483648
		s = w[1 + int(x / 65536) % 24] (x % 7 ? " " : ".\n")
		printf "%s", s; len += length(s)
	}
}' | head -c "$half" >"$wl_dir/half"
# The second half: the first with one word in 24 capitalised.
{ cat "$wl_dir/half"; sed 's/omega/OMEGA/g' "$wl_dir/half"; } >"$wl_dir/in"
bytes=$(stat -c %s "$wl_dir/in")
expected=$(sha256sum <"$wl_dir/in")

start=$(wl_now)
# shellcheck disable=SC2086 # $DIME is a list of words
wl_fg $DIME xz -T1 -c --lzma2=preset=6,dict="${dict}MiB" "$wl_dir/in" >"$wl_dir/in.xz" 2>"$wl_dir/err" ||
	wl_fail "xz failed (status $?): $(tail -n 3 "$wl_dir/err")"
end=$(wl_now)
[[ $(xz -dc "$wl_dir/in.xz" | sha256sum) == "$expected" ]] ||
	wl_fail "the output does not decompress to the input"
out=$(stat -c %s "$wl_dir/in.xz")
[[ $((out * 10)) -lt $((bytes * 6)) ]] || wl_fail "output of $out bytes for $bytes: not compressed"
wl_metric "$((bytes / 1000000)).$((bytes % 1000000 / 1000))" "$start" "$end" MB/s
