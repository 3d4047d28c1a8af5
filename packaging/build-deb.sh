#!/bin/sh
# Build gosendmail_<version>_<arch>.deb with dpkg-deb, offline, from the
# binaries in BINDIR (default bin/; make deb builds its own) and the files
# under packaging/debian, man/ and etc/. Usage: packaging/build-deb.sh
# [OUTDIR] (default: the checkout).
#
# The version comes from VERSION (the Makefile passes its own), made
# Debian-shaped: a leading "v" is dropped and "-" becomes "~" after the
# first one, so 0.1.0-dev sorts before 0.1.0. Files get the mode and owner
# root:root they have on the installed system; the setgid bit of
# /usr/sbin/sendmail is set by postinst with dpkg-statoverride, not here.
set -eu

cd "$(dirname "$0")/.."
out=${1:-.}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)}
version=$(printf '%s' "$version" | sed -e 's/^v//' -e 's/-/~/g')
case $version in
[0-9]*) ;;
*) version="0~$version" ;;
esac
arch=$(dpkg --print-architecture)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

bindir=${BINDIR:-bin}
for b in sendmail mailq newaliases smtpd; do
	[ -x "$bindir/$b" ] || { echo "build-deb: $bindir/$b is missing: run make first" >&2; exit 1; }
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
umask 022

install -d "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/usr/lib" \
	"$root/etc/mail" "$root/lib/systemd/system" "$root/usr/share/doc/gosendmail"
install -m 0755 "$bindir/smtpd" "$bindir/sendmail" "$root/usr/sbin/"
install -m 0755 "$bindir/mailq" "$bindir/newaliases" "$root/usr/bin/"
ln -s ../sbin/sendmail "$root/usr/lib/sendmail"
install -m 0644 etc/gosendmail.toml "$root/etc/mail/gosendmail.toml"
install -m 0644 packaging/debian/gosendmail.service "$root/lib/systemd/system/gosendmail.service"

# Man pages, compressed as Debian wants them.
for page in man/*.[0-9]; do
	[ -e "$page" ] || continue
	sec=${page##*.}
	dest="$root/usr/share/man/man$sec/${page##*/}.gz"
	install -d "$root/usr/share/man/man$sec"
	gzip -9n <"$page" >"$dest"
	chmod 0644 "$dest"
done

install -m 0644 packaging/debian/copyright "$root/usr/share/doc/gosendmail/copyright"
date=$(date -R -u -d "@$epoch")
# A native package (no Debian revision): changelog.gz, not changelog.Debian.gz.
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" packaging/debian/changelog |
	gzip -9n >"$root/usr/share/doc/gosendmail/changelog.gz"
chmod 0644 "$root/usr/share/doc/gosendmail/changelog.gz"
for f in README.md docs/security.md docs/sendmail-compat.md; do
	[ -e "$f" ] && install -m 0644 "$f" "$root/usr/share/doc/gosendmail/"
done

install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	packaging/debian/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

# Reproducible: every file dated from the last commit.
find "$root" -exec touch -h -d "@$epoch" {} +
deb="$out/gosendmail_${version}_${arch}.deb"
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
