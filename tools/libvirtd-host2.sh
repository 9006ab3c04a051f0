#!/usr/bin/env bash
# A second libvirt host for virtscript's multi-host tests (migration, -c A -c B,
# --hosts), beside the first daemon of tools/libvirtd-netns.sh.
#
#   tools/libvirtd-host2.sh start    start it (the first daemon must be running)
#   tools/libvirtd-host2.sh stop     stop it and everything it started, by pid file
#   tools/libvirtd-host2.sh status   say whether it answers
#   tools/libvirtd-host2.sh uri      print the URI that reaches it from anywhere
#
# The second host is a libvirtd in its own network, mount and UTS namespaces:
#   - network namespace vs-h2, joined to the first daemon's namespace by a veth
#     pair: 172.31.250.1/24 (first host) and 172.31.250.2/24 (second host).
#     These addresses exist only inside the two namespaces. From the root
#     namespace they are NOT local (traffic to them would leave the machine):
#     reach them only from inside a namespace (`ip netns exec virtscript ...`).
#   - its own /run/libvirt, /etc/libvirt (a copy with listen_tcp, no auth,
#     a distinct host_uuid), /var/log/libvirt, /var/cache/libvirt and
#     /var/lib/libvirt/{qemu,network,dnsmasq}, bind-mounted from $STATE.
#     /var/lib/libvirt/images is NOT private: both hosts share it, as two
#     hypervisors share an NFS export, so a live migration needs no storage copy.
#   - hostname vs-host2, so the two hosts differ as real ones do.
# Clients reach it through its unix socket from anywhere: `uri` prints
# qemu+unix:///system?socket=$STATE/run/libvirt-sock. Inside the first
# namespace, qemu+tcp://172.31.250.2/system works too (libvirt's own remote
# protocol, unauthenticated: this host exists only for tests).
set -euo pipefail

FIRST_NETNS=${VIRTSCRIPT_NETNS:-virtscript}
NETNS=vs-h2
STATE=${VIRTSCRIPT_HOST2_STATE:-/var/lib/virtscript-host2}
ADDR1=172.31.250.1
ADDR2=172.31.250.2
URI="qemu+unix:///system?socket=$STATE/run/libvirt-sock"
# A fixed UUID: libvirt would otherwise derive both hosts' UUIDs from the same
# SMBIOS data, and migration refuses a destination with the source's UUID.
HOST_UUID=4a3bc2e6-3f0c-4c39-9a1e-2f5d7c0e0b02

log() { echo "libvirtd-host2: $*" >&2; }

answers() {
  timeout 5 virsh -c "$URI" version >/dev/null 2>&1
}

# The part that runs inside the new mount and UTS namespaces (and vs-h2).
inner() {
  mount --make-rprivate /
  hostname vs-host2
  local d
  for d in run:/run/libvirt etc:/etc/libvirt log:/var/log/libvirt cache:/var/cache/libvirt \
           qemu:/var/lib/libvirt/qemu network:/var/lib/libvirt/network \
           dnsmasq:/var/lib/libvirt/dnsmasq; do
    mkdir -p "${d#*:}"
    mount --bind "$STATE/${d%%:*}" "${d#*:}"
  done
  # Its own name resolves locally, as on a host: libvirt looks it up.
  printf '127.0.0.1 localhost\n127.0.1.1 vs-host2\n' >"$STATE/hosts"
  mount --bind "$STATE/hosts" /etc/hosts
  ip link set lo up
  virtlogd -d -p "$STATE/run/virtlogd.pid"
  # tini reaps QEMU's zombies at once (see start_libvirtd in libvirtd-netns.sh).
  exec tini -s -- libvirtd --listen -p "$STATE/run/libvirtd.pid" \
    </dev/null >>"$STATE/log/libvirtd-stderr.log" 2>&1
}

prepare_state() {
  local d
  for d in run etc log/qemu cache qemu network dnsmasq; do
    mkdir -p "$STATE/$d"
  done
  # The package's configuration files, none of the first host's objects.
  find /etc/libvirt -maxdepth 1 -type f -exec cp -f {} "$STATE/etc/" \;
  mkdir -p "$STATE/etc/qemu/networks/autostart" "$STATE/etc/storage/autostart"
  cat >"$STATE/etc/libvirtd.conf" <<EOF
# Written by tools/libvirtd-host2.sh: a test host inside network namespace $NETNS.
listen_tls = 0
listen_tcp = 1
auth_tcp = "none"
tcp_port = "16509"
host_uuid = "$HOST_UUID"
EOF
}

link_namespaces() {
  ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
  if ! ip -n "$NETNS" link show vs-h2-veth >/dev/null 2>&1; then
    ip -n "$FIRST_NETNS" link add vs-h1-veth type veth peer name vs-h2-veth netns "$NETNS"
    ip -n "$FIRST_NETNS" addr add "$ADDR1/24" dev vs-h1-veth
    ip -n "$NETNS" addr add "$ADDR2/24" dev vs-h2-veth
    ip -n "$FIRST_NETNS" link set vs-h1-veth up
    ip -n "$NETNS" link set vs-h2-veth up
  fi
}

start() {
  if [ "$(id -u)" != 0 ]; then log "must run as root"; exit 1; fi
  if ! ip netns list | grep -qw "$FIRST_NETNS"; then
    log "the first daemon's namespace $FIRST_NETNS is missing: run tools/libvirtd-netns.sh start"
    exit 1
  fi
  # The veth pair goes when the first namespace is re-made (a restart of
  # the first daemon): make sure of it even when the second host runs.
  link_namespaces
  if answers; then
    log "already answers on $URI"
    return 0
  fi
  stop_processes
  prepare_state
  setsid ip netns exec "$NETNS" unshare -m -u "$(readlink -f "$0")" __inner </dev/null >/dev/null 2>&1 &
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if answers; then
      log "second host answers on $URI (namespace $NETNS, $ADDR2)"
      return 0
    fi
    sleep 0.2
  done
  log "the second host did not answer within 30 s"
  tail -n 20 "$STATE/log/libvirtd-stderr.log" >&2 2>/dev/null || true
  exit 1
}

# Every process the second host started, by its pid file: guests, dnsmasq,
# libvirtd, virtlogd. Nothing else on the machine is touched.
stop_processes() {
  local f pid
  for f in "$STATE"/run/qemu/*.pid "$STATE"/run/network/*.pid \
           "$STATE/run/libvirtd.pid" "$STATE/run/virtlogd.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    rm -f "$f"
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    # A pid file outlives a crash, and its number may be another process's
    # by now: only a process of the kind the file names is ours.
    [ -r "/proc/$pid/cmdline" ] || continue
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE 'libvirtd|virtlogd|qemu|dnsmasq'; then
      continue
    fi
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
}

stop() {
  if [ "$(id -u)" != 0 ]; then log "must run as root"; exit 1; fi
  stop_processes
  ip netns list | grep -qw "$NETNS" && ip netns delete "$NETNS" || true
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then echo "second host answers on $URI"; else echo "second host is not running"; exit 1; fi ;;
  uri) echo "$URI" ;;
  __inner) inner ;;
  *) echo "usage: $0 start|stop|status|uri" >&2; exit 2 ;;
esac
