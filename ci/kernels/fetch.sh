#!/usr/bin/env bash
# Fetches Debian kernel images by package name and extracts their vmlinuz, using a private apt
# state (sources, lists and cache under the cache directory): the host's apt configuration is read,
# never changed. The private sources are the host's own Debian archive and security archive for its
# release, plus that release's backports (where the newer kernels are).
#
#   ci/kernels/fetch.sh [--cache DIR] [--modules NAME,...] PACKAGE...
#
# A PACKAGE is an exact binary package name (linux-image-6.1.0-28-cloud-amd64) or an extended
# regular expression anchored at both ends ('linux-image-6\.12\..*\+deb12-cloud-amd64'): the
# newest version of the newest matching package is taken; signed and unsigned images both work,
# -dbg packages never match. --modules extracts those kernel modules (as shipped: .ko, .ko.xz) next
# to the image, under modules/; their dependencies are not resolved.
# For each package, prints one line: `<package> <kernel release> <vmlinuz path>`; the image's
# directory also holds `config` and `modules/`.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache=target/kernels
modules=""
while [ $# -gt 0 ]; do
  case $1 in
    --cache) cache=$2; shift 2 ;;
    --modules) modules=${2//,/ }; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: ci/kernels/fetch.sh [--cache DIR] [--modules NAME,...] PACKAGE..." >&2; exit 2; }
for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "fetch.sh: $tool is missing (a Debian host is needed)" >&2; exit 2; }
done

apt_dir=$(realpath -m "$cache/apt")
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs"

# The host's Debian archives for its release, as apt itself reports them (no host names here).
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
targets=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(ORIGIN) $(LABEL)' | sort -u)
archive=$(awk -v r="$codename" '$2 == r && $3 == "Debian" && $4 == "Debian" { print $1; exit }' <<<"$targets")
security=$(awk -v r="$codename-security" '$2 == r && $3 == "Debian" { print $1; exit }' <<<"$targets")
[ -n "$archive" ] || { echo "fetch.sh: the host's apt sources have no Debian $codename archive" >&2; exit 1; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
  echo "deb [signed-by=$keyring] $archive $codename main"
  echo "deb [signed-by=$keyring] $archive $codename-updates main"
  echo "deb [signed-by=$keyring] $archive $codename-backports main"
  [ -z "$security" ] || echo "deb [signed-by=$keyring] $security $codename-security main"
} >"$apt_dir/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/no-parts"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=true"
)
# Refresh the private lists at most once an hour.
stamp="$apt_dir/updated"
if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
  apt-get "${apt_opts[@]}" update -qq >&2
  touch "$stamp"
fi

for want in "$@"; do
  # An exact name is an anchored pattern matching only itself; the newest package by version order.
  pkg=$(apt-cache "${apt_opts[@]}" search --names-only "^($want)\$" | awk '{ print $1 }' \
    | grep -v -- '-dbg$' | sort -V | tail -n 1)
  [ -n "$pkg" ] || { echo "fetch.sh: no package matches ^($want)\$" >&2; exit 1; }
  version=$(apt-cache "${apt_opts[@]}" show "$pkg" | awk '/^Version:/ { print $2 }' | sort -V | tail -n 1)
  deb_dir="$cache/debs/$pkg"
  mkdir -p "$deb_dir"
  deb=$(find "$deb_dir" -maxdepth 1 -name "*.deb" | head -n 1)
  if [ -z "$deb" ]; then
    (cd "$deb_dir" && apt-get "${apt_opts[@]}" download -qq "$pkg=$version" >&2)
    deb=$(find "$deb_dir" -maxdepth 1 -name "*.deb" | head -n 1)
  fi
  # The image is boot/vmlinuz-<release>. What the suites use is built in (namespaces, cgroup2,
  # tmpfs, devtmpfs, the 8250 serial ports); modules are only for what the plan adds.
  contents=$(dpkg-deb --contents "$deb" | awk '{ print $6 }')
  vmlinuz=$(grep -E '^\./boot/vmlinuz-' <<<"$contents" | head -n 1)
  [ -n "$vmlinuz" ] || { echo "fetch.sh: $deb holds no boot/vmlinuz-*" >&2; exit 1; }
  release=${vmlinuz#./boot/vmlinuz-}
  out="$cache/$release"
  if [ ! -s "$out/vmlinuz" ]; then
    mkdir -p "$out"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -O "$vmlinuz" >"$out/vmlinuz.partial"
    mv "$out/vmlinuz.partial" "$out/vmlinuz"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -O "./boot/config-$release" >"$out/config" 2>/dev/null || rm -f "$out/config"
  fi
  mkdir -p "$out/modules"
  for m in $modules; do
    ko=$(grep -E "/lib/modules/$(sed 's/[.+]/\\&/g' <<<"$release")/.*/$m\.ko(\.xz|\.zst)?\$" <<<"$contents" | head -n 1)
    [ -n "$ko" ] || { echo "fetch.sh: $pkg has no module $m" >&2; exit 1; }
    [ -s "$out/modules/$(basename "$ko")" ] \
      || dpkg-deb --fsys-tarfile "$deb" | tar -x -O "$ko" >"$out/modules/$(basename "$ko")"
  done
  echo "$pkg $release $(realpath "$out/vmlinuz")"
done
