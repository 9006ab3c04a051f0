#!/usr/bin/env bash
# Build a tiny bootable Linux guest for the real-daemon tests, into a cache dir:
#   vmlinuz         a Debian kernel (from the versioned linux-image-*-amd64 package
#                   that linux-image-amd64 depends on; extracted, never installed)
#   initrd.img      a busybox-static initramfs whose /init loads the e1000 driver
#                   (with its dependencies) and runs udhcpc on eth0, then idles
#
#   tools/tiny-guest.sh [CACHE_DIR]     prints the cache dir on stdout
#
# Needs: apt-get (download only), dpkg-deb, cpio, gzip, busybox-static.
set -euo pipefail

CACHE=${1:-${VIRTSCRIPT_TINY_GUEST:-/var/lib/libvirt/images/virtscript-tiny-guest}}
log() { echo "tiny-guest: $*" >&2; }

if [ -s "$CACHE/vmlinuz" ] && [ -s "$CACHE/initrd.img" ]; then
  echo "$CACHE"
  exit 0
fi

BUSYBOX=/bin/busybox
if ! [ -x "$BUSYBOX" ] || ! file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked"; then
  BUSYBOX=$(dpkg -L busybox-static 2>/dev/null | grep -E '/busybox$' | head -n1 || true)
fi
if [ -z "$BUSYBOX" ] || ! [ -x "$BUSYBOX" ]; then
  log "busybox-static is missing (apt-get install busybox-static)"
  exit 1
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The versioned kernel package the meta package points at.
PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$PKG" ]; then
  apt-get update -qq >&2 || true
  PKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$PKG" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
log "downloading $PKG"
(cd "$WORK" && apt-get download -qq "$PKG" >&2)
DEB=$(ls "$WORK"/*.deb | head -n1)
mkdir -p "$WORK/k"
dpkg-deb -x "$DEB" "$WORK/k"
KVER=$(ls "$WORK/k/lib/modules" | head -n1)
cp "$WORK"/k/boot/vmlinuz-* "$CACHE/vmlinuz.tmp"

# initramfs: busybox + e1000 (and what modules.dep says it needs).
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,etc,lib/modules,usr/share/udhcpc,tmp,run}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for app in sh mount insmod ip ifconfig udhcpc sleep cat echo route ls uname dmesg poweroff; do
  ln -sf busybox "$ROOT/bin/$app"
done
MODDIR="$WORK/k/lib/modules/$KVER"
# Resolve e1000's dependencies from each module's own .modinfo (Debian ships
# no modules.dep: depmod runs at install time, and we do not install).
modfile() { find "$MODDIR/kernel" -name "$1.ko*" | head -n1; }
unpack() { # module path -> plain .ko in the initramfs, prints its name
  local src=$1 base
  base=$(basename "$src")
  case "$base" in
    *.ko.xz) xz -dc "$src" > "$ROOT/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$src" > "$ROOT/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *.ko.gz) gzip -dc "$src" > "$ROOT/lib/modules/${base%.gz}"; base=${base%.gz} ;;
    *) cp "$src" "$ROOT/lib/modules/$base" ;;
  esac
  echo "$base"
}
ORDER=""
load() { # depth-first: dependencies before the module
  local name=$1 file ko deps d
  case " $ORDER " in *" $name.ko "*) return ;; esac
  file=$(modfile "$name")
  [ -n "$file" ] || { log "module $name not found"; exit 1; }
  ko=$(unpack "$file")
  deps=$(tr '\0' '\n' < "$ROOT/lib/modules/$ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' ')
  for d in $deps; do load "$d"; done
  ORDER="$ORDER $ko"
}
load e1000

cat > "$ROOT/usr/share/udhcpc/default.script" <<'S'
#!/bin/sh
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    [ -n "$router" ] && route add default gw "${router%% *}" dev "$interface" 2>/dev/null
    echo "tiny-guest: leased $ip on $interface"
    ;;
  deconfig) ifconfig "$interface" 0.0.0.0 up ;;
esac
exit 0
S
chmod +x "$ROOT/usr/share/udhcpc/default.script"

cat > "$ROOT/init" <<S
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "tiny-guest: kernel \$(uname -r)"
for m in$ORDER; do insmod /lib/modules/\$m || echo "tiny-guest: insmod \$m failed"; done
ip link set lo up
sleep 1
ip link set eth0 up
udhcpc -i eth0 -t 20 -T 2 -A 2 -b -s /usr/share/udhcpc/default.script
while true; do sleep 3600; done
S
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -9) > "$CACHE/initrd.img.tmp"
mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
mv "$CACHE/initrd.img.tmp" "$CACHE/initrd.img"
chmod 0644 "$CACHE/vmlinuz" "$CACHE/initrd.img"
log "built $CACHE (kernel $KVER, modules:$ORDER)"
echo "$CACHE"
