// Package maps reads the /etc/mail text files in sendmail's own formats,
// straight from their text: there is no makemap step and no .db file.
//
// # Text map sources
//
// virtusertable, access and mailertable are what `makemap hash X < X`
// reads (ReadSource):
//
//	# a comment: '#' as the first non-blank character
//	key<spaces or tabs>value, which is the rest of the line
//	joe@bar.com	error:nouser 550 No such user here
//
// Leading and trailing blanks are trimmed and blank lines skipped; a CR
// before the newline is ignored. Keys are folded to lower case (ASCII),
// as makemap does without -f, and every lookup folds its key the same
// way; values keep their case. A line is bad if it has no value, holds a
// NUL or another control byte (TAB aside), has a key over MaxKey (512)
// bytes, or is longer than MaxLine (64 KiB). Each bad line is reported as
// "FILE: line N: reason" (*LineError) and left out; parsing goes on so
// that all are reported. A key seen again is a warning and the first
// definition wins (makemap stores without overwriting). Values that do
// not parse for their map (below) are line errors too. A missing file is
// an empty map.
//
// # virtusertable
//
// LHS user@dom, user+*@dom (any detail, also empty), user++@dom (a
// non-empty detail), +*@dom, ++@dom, @dom (the whole domain). RHS an
// address (x@y), a local user (x), with %1 (user), %2 (detail), %3
// (+detail), %0 (the key looked up) substituted; or a refusal:
//
//	error:nouser 550 No such user here    550 5.1.1 No such user here
//	error:nouser                          550 5.1.1 User unknown
//	error:5.7.0:550 Address invalid       550 5.7.0 Address invalid
//	error:4.2.2:450 mailbox full          450 4.2.2 mailbox full
//
// Lookup order for user+detail@dom (proto.m4): user+detail@dom,
// user++@dom, user+*@dom, user@dom, ++@dom, +*@dom, @dom; for user@dom:
// user@dom, @dom. See Virtusertable.Lookup.
//
// # access
//
// Keys are tagged: Connect: (the client), From: (envelope sender), To:
// (recipient); untagged keys are the deprecated fallback, tried right
// after the tagged form of the same key. Keys are addresses
// (user@dom), local parts (user@), domains (matching their subdomains),
// IPv4 prefixes of whole octets (192.168.212), IPv6 prefixes of whole
// 16-bit groups (IPv6:2001:db8), and bracketed addresses ([192.0.2.7])
// that match clients whose address has no verified name. Values:
//
//	OK  RELAY  REJECT  DISCARD  SKIP  QUARANTINE:reason
//	ERROR:550 text  ERROR:5.7.1:550 text  ERROR:"550 text"  "550 text" (legacy)
//
// REJECT is "550 5.7.1 Access denied" (for recipients, "550 5.2.1
// Mailbox disabled for this recipient"); an ERROR without a status gets
// X.7.1 as Postfix gives it. Other tags (GreetPause:, ClientRate:,
// ClientConn:, Spam:, AuthInfo:, Srv_Features:, Try_TLS:, ...) are kept
// as written for Access.Tagged and Access.ClientValue. The orders, from
// proto.m4 (the first entry found wins; SKIP ends one step):
//
//	Connect:     host name and its parents (or [ip] and its prefixes), then IP prefixes
//	RelayClient: IP prefixes, then the verified host name and its parents; RELAY only
//	From:        full address (+detail, +*, plain), user@ (same), domain and parents
//	To:          full address, domain and parents
//	ToLocal:     full address, user@, domain and parents (a recipient in {w})
//	RelayTo:     domain and parents; RELAY only
//
// # mailertable
//
// Keys host.dom (that host only), .dom (any host below dom), "." (any
// domain). Lookup of a.b.example.org: a.b.example.org, .b.example.org,
// .example.org, .org, ".". Values mailer:host with mailer smtp, esmtp,
// smtp8, dsmtp or relay; [host] means no MX lookup; :port is ours
// (smtp:[10.0.0.5]:2525). Also local:user, local: and error:... as in the
// virtusertable.
//
// # Class files
//
// local-host-names, relay-domains and trusted-users hold one word per
// line (ReadClass). DomainIn matches a domain (and, for relay-domains,
// its parents); AddrIn matches relay-domains' network entries.
//
// # Reloading
//
// Watched holds one parsed file behind an atomic pointer and re-reads it
// when it changes (size, mtime, inode, ctime), at most once per interval
// from Get or whenever Check is called; a file written less than a second
// ago is taken only once a later look finds it unchanged, so a file being
// written is never half-read into force. A version with a bad line never
// replaces the one in force; its problems go to OnError, one line each
// with file and line, then a line saying which version stays. At the
// first load, with nothing to keep, the good lines are put in force and
// the bad ones reported the same way.
package maps
