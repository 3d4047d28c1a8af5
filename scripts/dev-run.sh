#!/bin/sh
# Start gosendmail on a development configuration: spool, mailboxes,
# /etc/mail files and the log under ./run in the checkout, listeners on
# unprivileged ports. Called by `make run`; the daemon stays in the
# foreground until Ctrl-C.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
mkdir -p "$run/spool/mqueue" "$run/spool/mqueue-client" "$run/spool/mail" "$run/etc"
[ -e "$run/etc/aliases" ] || printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' > "$run/etc/aliases"
[ -e "$run/etc/local-host-names" ] || printf 'localhost\n' > "$run/etc/local-host-names"
[ -e "$run/etc/trusted-users" ] || : > "$run/etc/trusted-users"
cfg="$run/gosendmail.toml"
cat > "$cfg" <<TOML
# Written by scripts/dev-run.sh; edit etc/gosendmail.toml for the keys.
hostname = "localhost"
queue_dir = "$run/spool/mqueue"
maildrop_dir = "$run/spool/mqueue-client"
mail_spool_dir = "$run/spool/mail"
aliases = "$run/etc/aliases"
local_host_names = "$run/etc/local-host-names"
trusted_users = "$run/etc/trusted-users"
virtusertable = "$run/etc/virtusertable"
access = "$run/etc/access"
mailertable = "$run/etc/mailertable"
control_socket = "$run/control"
log = "stderr"
# The development instance runs as whoever started it.
user = "$(id -un)"

[[listen]]
name = "MTA"
address = "127.0.0.1:2525"
mode = "mta"

[[listen]]
name = "submission"
address = "127.0.0.1:2587"
mode = "submission"
TOML
cat <<MSG
gosendmail development instance
  config:  $cfg
  submit:  GOSENDMAIL_CONFIG=$cfg bin/sendmail -t -i < message
  queue:   GOSENDMAIL_CONFIG=$cfg bin/mailq
MSG
exec "$top/bin/smtpd" --config "$cfg"
