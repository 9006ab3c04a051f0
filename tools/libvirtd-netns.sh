#!/usr/bin/env bash
# A private libvirt daemon for virtscript's real-daemon tests.
#
#   tools/libvirtd-netns.sh install   install the Debian packages (one transaction), users, dirs
#   tools/libvirtd-netns.sh start     install, then start virtlogd + libvirtd in their own
#                                     network namespace (bridges, dnsmasq and NAT rules stay there)
#   tools/libvirtd-netns.sh stop      stop both daemons, remove the namespace
#   tools/libvirtd-netns.sh kill      SIGKILL the daemon, as a crash would (tests)
#   tools/libvirtd-netns.sh status    say whether the daemon answers
#
# Clients reach the daemon through its unix socket as usual: qemu:///system.
# The harness knows its daemons by pid file ($PIDDIR) and by their network
# namespace: stop and kill never touch a libvirtd it did not start (another
# host's daemon on this machine included).
set -euo pipefail

NETNS=${VIRTSCRIPT_NETNS:-virtscript}
URI=qemu:///system
PIDDIR=/run/virtscript-harness/$NETNS
# swtpm: the emulator behind a VM's <tpm><backend type='emulator'>. virtiofsd has no
# package of its own in bookworm: qemu-system-common ships /usr/lib/qemu/virtiofsd and
# /usr/share/qemu/vhost-user/50-qemu-virtiofsd.json, through which libvirt finds it.
PACKAGES=(libvirt-dev pkg-config libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
          dnsmasq-base iptables iproute2 cpio busybox-static tmux
          file xz-utils zstd python3-libvirt virtinst hyperfine ovmf bc tini valgrind
          genisoimage iputils-ping less osinfo-db swtpm swtpm-tools)

log() { echo "libvirtd-netns: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root (it installs packages and creates a network namespace)"
    exit 1
  fi
}

. "$(dirname "$0")/lib/apt.sh"

install() {
  need_root
  apt_update libvirtd-netns
  # qemu-img must match qemu-system-x86's version: the machine image ships a
  # newer qemu-utils than Debian 12's qemu-system-x86 accepts, so the pin is
  # part of the same transaction (apt cannot resolve them one after the other).
  local qemu
  qemu=$(apt_candidate qemu-system-x86)
  if [ -z "$qemu" ] || [ "$qemu" = "(none)" ]; then
    log "apt has no candidate for qemu-system-x86"
    exit 1
  fi
  apt_install libvirtd-netns "${PACKAGES[@]}" "qemu-system-x86=$qemu" "qemu-utils=$qemu"
  getent group kvm >/dev/null || groupadd -r kvm
  getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
  getent group libvirt >/dev/null || groupadd -r libvirt
  id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
  # /dev/kvm as Debian's udev rule sets it (root:kvm 0660). Otherwise libvirt
  # finds KVM unusable for the qemu user, discards its QEMU capabilities cache
  # and re-probes QEMU (~40 s) on EVERY domain define and start.
  if [ -c /dev/kvm ]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
  mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/boot /var/run/libvirt /var/lib/libvirt/images /var/lib/libvirt/dnsmasq
}

answers() {
  timeout 5 virsh -c "$URI" version >/dev/null 2>&1
}

# libvirtd double-forks QEMU, so an exited QEMU becomes a zombie of the nearest
# subreaper, and `virsh destroy` waits until that zombie is reaped. On a host,
# systemd (PID 1) reaps it at once; PID 1 on these machines takes ~2 s, which
# every destroy would wait for. tini -s is the subreaper here: it runs libvirtd
# in the foreground and reaps its orphans immediately.
start_libvirtd() {
  setsid ip netns exec "$NETNS" tini -s -- libvirtd --pid-file "$PIDDIR/libvirtd.pid" \
    </dev/null >>/var/log/libvirt/libvirtd-stderr.log 2>&1 &
  echo $! >"$PIDDIR/tini.pid"
}

# The pid in pid file $1 when that process is alive and is $2 (a pid file
# outlives its process, and the pid may be reused).
live_pid() {
  local pid
  pid=$(cat "$PIDDIR/$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

# Whether process $1 is still there (a zombie waiting for its reaper is gone).
running() {
  [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Signal $2 to every pid in $1 (a list), then wait up to 5 s for them to go.
signal_and_wait() {
  local pids=$1 signal=$2 pid alive
  [ -n "$pids" ] || return 0
  kill "-$signal" $pids 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive=
    for pid in $pids; do
      running "$pid" && alive=1
    done
    [ -z "$alive" ] && return 0
    sleep 0.1
  done
  return 1
}

# Stop the process of pid file $1 named $2: TERM, then KILL after 5 s.
stop_pid() {
  local pid
  if pid=$(live_pid "$1" "$2"); then
    signal_and_wait "$pid" TERM || signal_and_wait "$pid" KILL || true
  fi
  rm -f "$PIDDIR/$1"
}

start() {
  install
  mkdir -p "$PIDDIR"
  if answers; then
    log "libvirtd already answers on $URI"
    return 0
  fi
  ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
  ip netns exec "$NETNS" ip link set lo up
  live_pid virtlogd.pid virtlogd >/dev/null ||
    ip netns exec "$NETNS" virtlogd -d --pid-file "$PIDDIR/virtlogd.pid"
  # After an unclean stop (kill -9) the first daemon sometimes never answers:
  # give each attempt 30 s, then replace it.
  for attempt in 1 2 3; do
    live_pid tini.pid tini >/dev/null || start_libvirtd
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if answers; then
        log "libvirtd answers on $URI (network namespace $NETNS)"
        return 0
      fi
      sleep 0.2
    done
    log "libvirtd did not answer within 30 s (attempt $attempt); restarting it"
    kill_daemon
    sleep 1
  done
  log "libvirtd did not answer on $URI"
  tail -n 20 /var/log/libvirt/libvirtd.log 2>/dev/null >&2 || true
  exit 1
}

# The pids of processes named $1 inside the harness's namespace: a daemon
# an older harness started without pid files is still this harness's own.
namespace_pids() {
  local pid
  ip netns list | grep -qw "$NETNS" || return 0
  for pid in $(ip netns pids "$NETNS"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
  done
  return 0
}

# SIGKILL the harness's libvirtd (and its tini), as a crash would.
kill_daemon() {
  local pids
  pids=$(live_pid libvirtd.pid libvirtd || namespace_pids libvirtd)
  signal_and_wait "$pids" KILL || true
  pids=$(live_pid tini.pid tini || namespace_pids tini)
  signal_and_wait "$pids" KILL || true
  rm -f "$PIDDIR/libvirtd.pid" "$PIDDIR/tini.pid"
}

stop() {
  need_root
  # The second host hangs off this namespace (tools/libvirtd-host2.sh).
  "$(dirname "$0")/libvirtd-host2.sh" stop
  stop_pid libvirtd.pid libvirtd
  stop_pid tini.pid tini
  # virtlogd after libvirtd: a virtlogd still shutting down would be taken
  # for a running one, and the new libvirtd would find no log socket.
  stop_pid virtlogd.pid virtlogd
  # What the daemon started in its namespace (dnsmasq, QEMU), and daemons of
  # a harness that kept no pid files: all of them are this harness's own.
  if ip netns list | grep -qw "$NETNS"; then
    local pids
    pids=$(ip netns pids "$NETNS" | tr '\n' ' ')
    signal_and_wait "$pids" TERM || signal_and_wait "$pids" KILL || true
    ip netns delete "$NETNS" || true
  fi
  log "stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  kill) need_root; kill_daemon ;;
  status) if answers; then echo "libvirtd answers on $URI"; else echo "libvirtd is not running"; exit 1; fi ;;
  *) echo "usage: $0 install|start|stop|kill|status" >&2; exit 2 ;;
esac
