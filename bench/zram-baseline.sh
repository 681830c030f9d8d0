#!/bin/sh
# The do-it-yourself far-memory baseline for the accuracy report: a memory
# cgroup whose limit holds part of a program's working set, with swap on
# zram. usage: bench/zram-baseline.sh COMMAND [ARGS...]
#
# As root, with zram and a memory cgroup controller, it creates a temporary
# zram device (hot_add; ZRAM_MB MiB, the kernel's default compressor) used as
# swap at the highest priority, and a temporary memory cgroup, then runs
# COMMAND with
#   DIME_BENCH_CGROUP    the cgroup's directory (COMMAND's cases join it and
#                        set its limit themselves: bench/lib/memcg.c)
#   DIME_BENCH_CGROUP_V  2 or 1 (cgroup v2 memory.max + memory.swap.max, or
#                        v1 memory.limit_in_bytes)
#   DIME_BENCH_ZRAM_INFO what was set up, for the report
# Otherwise COMMAND runs without them and with DIME_BENCH_ZRAM_SKIP saying
# what is missing: the baseline is skipped, never an error.
#
# Everything it made is removed however COMMAND ends (signals included):
# swapoff, device reset and hot_remove, cgroup rmdir. Existing swap devices,
# zram devices and cgroups are never touched. The cgroup is a child of this
# process's own v1 memory cgroup (so whatever limits the caller is under
# still apply), or, with cgroup v2, a child of the v2 root (v2 allows
# controllers only in cgroups without processes).
#
# While the device is swapped on, it is swap for the whole machine: under
# global memory pressure other processes could be swapped to it too (swapoff
# brings their pages back). Exit status: COMMAND's.
PATH=$PATH:/usr/sbin:/sbin
ZRAM_MB=${ZRAM_MB:-256}

skip=""
dev=""
swapped=""
cg=""
loaded=""

cleanup() {
	if [ -n "$cg" ]; then
		# The measured processes have exited; the kernel may still be
		# detaching them for a moment.
		i=0
		while ! rmdir "$cg" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		[ -d "$cg" ] && echo "zram-baseline: could not remove cgroup $cg" >&2
	fi
	if [ -n "$swapped" ]; then
		swapoff "/dev/zram$dev" || echo "zram-baseline: swapoff /dev/zram$dev failed" >&2
	fi
	if [ -n "$dev" ]; then
		echo 1 >"/sys/block/zram$dev/reset" 2>/dev/null
		echo "$dev" >/sys/class/zram-control/hot_remove 2>/dev/null ||
			echo "zram-baseline: could not remove zram$dev" >&2
	fi
	[ -n "$loaded" ] && modprobe -r zram 2>/dev/null
	cg="" swapped="" dev="" loaded=""
}

# One place to give up: undo what was made, record why.
give_up() {
	cleanup
	skip="$1"
}

# The mount point of the first cgroup v1 hierarchy with the memory
# controller, or of the cgroup2 hierarchy ($1 = v1 | v2).
mount_of() {
	awk -v want="$1" '{
		for (i = 1; i <= NF && $i != "-"; i++) ;
		fs = $(i + 1); opts = $(i + 3)
		if (want == "v2" && fs == "cgroup2") { print $5; exit }
		if (want == "v1" && fs == "cgroup" && opts ~ /(^|,)memory(,|$)/) { print $5; exit }
	}' /proc/self/mountinfo
}

setup() {
	[ "$(id -u)" -eq 0 ] || { skip="not root (the baseline needs a zram device, swapon and a cgroup)"; return; }
	for t in mkswap swapon swapoff; do
		command -v $t >/dev/null || { skip="$t not found (Debian package util-linux)"; return; }
	done
	if [ ! -e /sys/class/zram-control/hot_add ] && command -v modprobe >/dev/null &&
		modprobe zram num_devices=0 2>/dev/null; then
		loaded=1
	fi
	if [ ! -e /sys/class/zram-control/hot_add ]; then
		if command -v modprobe >/dev/null; then
			skip="zram: no /sys/class/zram-control and 'modprobe zram' failed (kernel $(uname -r) without CONFIG_ZRAM or its module)"
		else
			skip="zram: no /sys/class/zram-control (kernel $(uname -r) has no built-in zram, and there is no modprobe to load a module)"
		fi
		return
	fi

	# The cgroup's parent: the v2 root with memory delegated, else our own
	# v1 memory cgroup.
	parent="" ver=""
	m2=$(mount_of v2)
	if [ -n "$m2" ] && grep -qw memory "$m2/cgroup.subtree_control" 2>/dev/null; then
		parent=$m2 ver=2
	else
		m1=$(mount_of v1)
		own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3; exit }' /proc/self/cgroup)
		if [ -n "$m1" ] && [ -n "$own" ] && [ -e "$m1$own/memory.limit_in_bytes" ]; then
			parent=$m1$own ver=1
		fi
	fi
	if [ -z "$parent" ]; then
		skip="no memory cgroup controller (cgroup v2${m2:+ at $m2} without memory in cgroup.subtree_control, no cgroup v1 memory hierarchy)"
		return
	fi

	dev=$(cat /sys/class/zram-control/hot_add 2>/dev/null) || { dev=""; give_up "zram: hot_add failed"; return; }
	echo "${ZRAM_MB}M" >"/sys/block/zram$dev/disksize" 2>/dev/null ||
		{ give_up "zram: setting the size of zram$dev failed"; return; }
	i=0
	while [ ! -b "/dev/zram$dev" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
	mkswap "/dev/zram$dev" >/dev/null 2>&1 || { give_up "mkswap /dev/zram$dev failed"; return; }
	swapon -p 32767 "/dev/zram$dev" 2>/dev/null || { give_up "swapon /dev/zram$dev failed"; return; }
	swapped=1
	cg="$parent/dime-zram-$$"
	mkdir "$cg" 2>/dev/null || { cg=""; give_up "cannot create a cgroup under $parent"; return; }
	if [ $ver = 2 ] && [ ! -e "$cg/memory.swap.max" ]; then
		give_up "cgroup v2 without swap control (memory.swap.max missing)"
		return
	fi
	comp=$(sed 's/.*\[\(.*\)\].*/\1/' "/sys/block/zram$dev/comp_algorithm")
	export DIME_BENCH_CGROUP="$cg" DIME_BENCH_CGROUP_V=$ver
	how="present"
	[ -n "$loaded" ] && how="module loaded for the run"
	export DIME_BENCH_ZRAM_INFO="zram$dev ($how; $comp, ${ZRAM_MB} MiB, swap priority 32767), cgroup v$ver, vm.page-cluster $(cat /proc/sys/vm/page-cluster), swappiness $(cat "$cg/memory.swappiness" 2>/dev/null || cat /proc/sys/vm/swappiness)"
}

child=""
# A signal ends COMMAND (SIGTERM: a background job of a script ignores
# SIGINT), which is waited for before the teardown: its processes must have
# left the cgroup and the swap device.
stop() {
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
	exit "$1"
}
trap cleanup EXIT
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'stop 129' HUP

[ $# -gt 0 ] || { echo "usage: bench/zram-baseline.sh COMMAND [ARGS...]" >&2; exit 2; }
setup
if [ -n "$skip" ]; then
	unset DIME_BENCH_CGROUP DIME_BENCH_CGROUP_V DIME_BENCH_ZRAM_INFO
	export DIME_BENCH_ZRAM_SKIP="$skip"
fi
"$@" &
child=$!
wait "$child"
status=$?
child=""
cleanup
exit $status
