#!/bin/sh
# Builds the .deb of distcc-pump-rs with dpkg-deb from a tree staged by `make install`.
#
#   packaging/deb.sh [OUTDIR]        (default OUTDIR: target/debian)
#
# Environment:
#   BUILD_DIR   take already-built binaries from there (e.g. target/debug); unset, the
#               Makefile runs a release build first (`make all`)
#   MAKE        make program (default make)
#   DEB_VERSION package version (default: the workspace version, then -1)
#   DEBFULLNAME, DEBEMAIL   the Maintainer field
#   DEB_BUILD_OPTIONS       `nostrip` keeps the debug information in the binaries
#
# The package installs next to the distro's `distcc` (Depends: distcc) and takes the
# place of `distcc-pump` (Provides/Conflicts/Replaces), /usr/bin/distcc-pump included.
# The distcc package owns /usr/bin/lsdistcc (and lsdistcc.1.gz): preinst diverts those to
# NAME.distrib, postrm restores them when the package is removed.
# Prints the path of the .deb on stdout.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
outdir=${1:-$top/target/debian}
make=${MAKE:-make}
package=distcc-pump-rs

# Files of the distro's distcc package that we ship too (diverted when we do).
distcc_owned="/usr/bin/lsdistcc /usr/share/man/man1/lsdistcc.1.gz"

for tool in dpkg-deb dpkg-shlibdeps gzip md5sum; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "deb.sh: $tool is missing (apt-get install dpkg-dev)" >&2
        exit 1
    }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/$package-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022
# dpkg-shlibdeps wants the staged files under debian/<package> of a source tree.
root=$work/debian/$package

if [ -n "${BUILD_DIR:-}" ]; then
    BUILD_DIR=$(cd "$top" && cd "$BUILD_DIR" && pwd)
fi
$make -s -C "$here" install DESTDIR="$root" prefix=/usr sysconfdir=/etc \
    zshcompdir=/usr/share/zsh/vendor-completions GENDIR="$work/gen" \
    ${BUILD_DIR:+BUILD_DIR="$BUILD_DIR"} >&2
bindir=${BUILD_DIR:-$top/target/release}
version=$("$bindir/packaging" version)
deb_version=${DEB_VERSION:-$version-1}
arch=$(dpkg --print-architecture)

case " ${DEB_BUILD_OPTIONS:-} " in
*" nostrip "*) ;;
*)
    for f in "$root"/usr/bin/*; do
        [ -L "$f" ] || strip --remove-section=.comment --remove-section=.note --strip-unneeded "$f"
    done
    ;;
esac

doc=$root/usr/share/doc/$package
install -d "$doc"
install -m 644 "$here/debian/copyright" "$doc/copyright"

# Runtime libraries, as dpkg-shlibdeps computes them from the ELF files (it finds the
# package root by its DEBIAN directory).
install -d -m 755 "$root/DEBIAN"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >"$work/debian/control"
set --
for f in "$root"/usr/bin/*; do
    [ -L "$f" ] || set -- "$@" "-edebian/$package/usr/bin/${f##*/}"
done
(cd "$work" && dpkg-shlibdeps -O "$@") >"$work/shlibs"
shlibs=$(sed -n 's/^shlibs:Depends=//p' "$work/shlibs")

diversions=
for f in $distcc_owned; do
    [ -e "$root$f" ] && diversions="$diversions $f"
done

for script in preinst postrm; do
    sed "s|@DIVERSIONS@|${diversions# }|" "$here/debian/$script" >"$root/DEBIAN/$script"
    chmod 755 "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $deb_version
Architecture: $arch
Maintainer: ${DEBFULLNAME:-distcc-pump-rs developers} <${DEBEMAIL:-root@localhost}>
Installed-Size: $installed_size
Depends: distcc (>= 3.4)${shlibs:+, $shlibs}
Provides: distcc-pump
Conflicts: distcc-pump
Replaces: distcc-pump
Section: devel
Priority: optional
Description: pump mode for distcc without Python (pump, lsdistcc, include_server)
 Drop-in replacements, written in Rust, for the pump-mode tools of distcc 3.4:
 pump (also installed as distcc-pump), the include server and lsdistcc. They
 work with the distro's unmodified distcc client and distccd.
 .
 This package takes the place of distcc-pump. It diverts the distcc package's
 lsdistcc to /usr/bin/lsdistcc.distrib while it is installed.
EOF
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p "$outdir"
deb=$outdir/${package}_${deb_version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
