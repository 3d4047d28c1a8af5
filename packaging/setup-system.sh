#!/bin/sh
# What the Debian package's postinst does, for `make install` on a system
# without dpkg: the system user and groups, the spool directories, the
# setgid sendmail, /etc/aliases if there is none, newaliases. Run as root
# after the files are installed; PREFIX is where they went (/usr).
# Existing users, groups, directories and /etc/mail files are kept.
set -eu

PREFIX=${PREFIX:-/usr}
USER=gosendmail
DROP_GROUP=gosendmail-drop

[ "$(id -u)" = 0 ] || { echo "setup-system: run as root" >&2; exit 77; }

if ! getent group "$DROP_GROUP" >/dev/null; then
	groupadd --system "$DROP_GROUP"
fi
if ! getent passwd "$USER" >/dev/null; then
	getent group "$USER" >/dev/null || groupadd --system "$USER"
	useradd --system --gid "$USER" --home-dir /var/spool/mqueue --no-create-home \
		--shell /usr/sbin/nologin --comment "gosendmail mail daemon" "$USER"
fi

install -d -m 0755 /var/spool
[ -d /var/spool/mqueue ] || install -d -m 0700 /var/spool/mqueue
chown "$USER:$USER" /var/spool/mqueue
chmod 0700 /var/spool/mqueue
[ -d /var/spool/mqueue-client ] || install -d -m 0730 /var/spool/mqueue-client
chown "$USER:$DROP_GROUP" /var/spool/mqueue-client
chmod 0730 /var/spool/mqueue-client

chgrp "$DROP_GROUP" "$PREFIX/sbin/sendmail"
chmod 2755 "$PREFIX/sbin/sendmail"

if [ ! -e /etc/aliases ]; then
	printf '# See aliases(5) and gosendmail-aliases(5).\npostmaster: root\n' >/etc/aliases
	chmod 0644 /etc/aliases
fi
"$PREFIX/bin/newaliases" || echo "setup-system: newaliases reported a problem with /etc/aliases (see above)" >&2
