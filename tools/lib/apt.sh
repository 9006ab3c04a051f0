# shellcheck shell=bash
# The project's one way to install Debian packages (sourced by tools/try.sh and
# tools/libvirtd-netns.sh).
#
# Set-up has exactly one path (DEVELOPERS.md): every run updates the package
# lists and installs the whole list, pins included, in ONE apt transaction. On
# a machine that has everything that transaction is a no-op; on a fresh one it
# installs everything. There is no "if missing then" branch, so a kept
# developer machine or CI takes the same path a new user's machine takes.
#
# apt's and dpkg's own chatter goes to a log that is shown only on failure.

# apt_install WHO PKG...   (PKG is NAME or NAME=VERSION)
apt_install() {
  local who=$1; shift
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  local aptlog
  aptlog=$(mktemp)
  echo "$who: installing (a no-op when present): $*" >&2
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends --allow-downgrades -o Dpkg::Use-Pty=0 "$@" \
        >"$aptlog" 2>&1; then
    cat "$aptlog" >&2
    rm -f "$aptlog"
    echo "$who: apt-get install failed" >&2
    return 1
  fi
  rm -f "$aptlog"
}

# apt_update WHO   refresh the package lists (a fresh machine has none)
apt_update() {
  local who=$1
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  local aptlog
  aptlog=$(mktemp)
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$aptlog" 2>&1; then
    cat "$aptlog" >&2
    rm -f "$aptlog"
    echo "$who: apt-get update failed" >&2
    return 1
  fi
  rm -f "$aptlog"
}

# apt_candidate PKG   the version apt would install (after apt_update)
apt_candidate() {
  apt-cache policy "$1" | awk '/Candidate:/ { print $2; exit }'
}
