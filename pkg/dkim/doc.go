// Package dkim signs mail that leaves for foreign hosts with DKIM (RFC 6376),
// choosing keys the way opendkim does, so an existing /etc/opendkim setup
// works unchanged. It also makes keys (Keygen) and checks that DNS publishes
// them (Check), and offers both as the `smtpd dkim` subcommands (Command).
//
// Which mail is signed is the caller's decision: the queue runner signs what
// it sends to foreign hosts, and nothing else. This package only answers
// "which keys apply to this author, and what are the signatures".
//
// # Tables
//
// The configuration keys dkim.key_table and dkim.signing_table name
// opendkim's files. A path may carry opendkim's dataset prefix: "file:" (or
// none) is a flat file, "refile:" a file of wildcard patterns. Other dataset
// types (db:, dsn:, ldap:, lua:, csl:...) are refused with an error: convert
// them to a flat file. In both files '#' starts a comment that runs to the end of the line,
// blank lines are ignored, and a line is a key, white space, and a value
// whose parts are separated by colons.
//
// KeyTable: one key per line,
//
//	NAME  DOMAIN:SELECTOR:KEY
//	mail._domainkey.example.com  example.com:mail:/etc/opendkim/keys/example.com/mail.private
//
// DOMAIN is the signing domain (d=) or "%", which stands for the author's
// domain, so one key can sign for many domains. KEY is a file when it starts
// with "/", "./" or "../" (relative paths are taken from the KeyTable's
// directory: we have no opendkim BaseDirectory), otherwise the key itself as
// base64 DER; in a file name "%" stands for the author's domain, so
// /etc/opendkim/keys/%/mail.private picks a per-domain file. A key file
// holds a PEM private key: PKCS#1 ("RSA PRIVATE KEY", what opendkim-genkey's
// .private holds) or PKCS#8 ("PRIVATE KEY", RSA or Ed25519), or base64 DER,
// or base64 of a 32-byte Ed25519 seed (dkimpy's dknewkey and rspamd write
// that). RSA keys must have 1024 to 4096 bits (RFC 8301 section 3.2: signers
// must use at least 1024, and verifiers need not check more than 4096). As
// opendkim's RequireSafeKeys does by default, a key file that every user may
// read or write is refused. If the KeyTable path has the refile: prefix, key
// names are wildcard patterns too (opendkim allows it; first match wins).
//
// SigningTable: which keys sign for which authors. The value is a KeyTable
// name (or "%", the author's domain used as the name), optionally followed
// by ":" and the signer identity for i= ("%" in it is the author's domain;
// an identity outside the signing domain is left out, as opendkim does).
//
// Without refile:, keys are looked up exactly (case-insensitively) for the
// author user@host in opendkim's order: "user@host", then "host", then
// "user@.parent" for each parent domain from the nearest up, then ".parent"
// likewise, then "user@*", then "*". So for ann@mail.example.com the keys
// tried are ann@mail.example.com, mail.example.com, ann@.example.com,
// ann@.com, .example.com, .com, ann@*, *. The first key that exists wins.
//
// With refile:, keys are patterns in which "*" matches any run of characters
// (and nothing else is special), matched case-insensitively against the
// whole address, in file order: the first matching pattern wins.
//
// Several signatures: opendkim applies only the first match unless
// MultipleSignatures is on, which would make a trailing catch-all line sign
// every message a second time. We keep "first match wins" and extend it:
// every line whose key (the pattern, or the exact key) is the same as the
// winning line's applies, in file order, one signature each. That is how one
// domain gets both an RSA and an Ed25519 signature (many receivers still
// verify only RSA, so an Ed25519 signature goes beside an RSA one, not
// instead of it):
//
//	*@example.com  rsa._domainkey.example.com
//	*@example.com  ed._domainkey.example.com
//	*              default
//
// signs example.com's mail twice and everyone else's once, with "default".
//
// # Never unsigned
//
// Every key is loaded by LoadTables, so a key file that is missing,
// unreadable or malformed is reported at start and on reload, with the file
// and the reason. Such a key, a SigningTable line that names no KeyTable key
// or is malformed, or a "%" that cannot be filled in, stays in the tables as
// broken: an author it applies to gets a temporary error from Sign
// (451 4.3.5, a configuration problem), never an unsigned message; with
// dkim.on_error = unsigned the caller may choose to send it anyway. A
// SigningTable that cannot be read (or a KeyTable without one) leaves no way
// to tell which mail must be signed, so every message gets that error. An
// author no line applies to gets no signature and no error.
//
// # Signatures
//
// rsa-sha256 or ed25519-sha256 (RFC 8463), c=relaxed/relaxed, no l= and no
// x=. The header fields signed are those below that the message has, each
// as often as it occurs, plus From once more than it occurs ("oversigned":
// RFC 6376 section 8.15, so nobody can add a second From that the signature
// still covers): From, Sender, Reply-To, To, Cc, Subject, Date, Message-ID,
// In-Reply-To, References, MIME-Version, Content-Type,
// Content-Transfer-Encoding, and List-Unsubscribe and List-Unsubscribe-Post,
// which RFC 8058 requires a DKIM signature to cover for one-click
// unsubscribe.
//
// The author is the first address of the message's From: field, as
// opendkim takes it (AuthorOf). The message is streamed: only its header is
// held in memory.
package dkim
