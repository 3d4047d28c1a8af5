// Package importmc translates a sendmail.mc into gosendmail.toml; it is
// what "smtpd import-mc" runs.
//
// Convert returns the configuration and a report: one Item per thing not
// translated (with the line and the reason), per difference worth a note,
// per action the user must take, and per syntax error. The configuration
// always loads with config.Load. Keys come with a comment naming their
// source ("# from sendmail.mc line 12: DAEMON_OPTIONS(...)"). Every key
// that sendmail.mc states is written, even when it equals gosendmail's
// default; keys that sendmail.mc does not mention are left out, so
// gosendmail's defaults apply, and where those differ from sendmail's the
// report has a note (a missing FEATURE(`virtusertable') does not stop
// gosendmail from reading /etc/mail/virtusertable, for instance).
//
// # The m4 subset
//
// The file is not run through m4. The reader understands what .mc files
// are written in:
//
//   - quotes `like this', nested; one level is removed and nothing inside
//     is interpreted. A quote that never closes is an error on the line
//     where it opens, and reading resumes on the next line; a stray ' is
//     an error too (m4 would copy it into sendmail.cf);
//   - dnl deletes the rest of the line and its newline, also between the
//     arguments of a call;
//   - # outside quotes starts a comment that runs to the end of the line
//     (m4 copies it into sendmail.cf; it means nothing here);
//   - NAME(arg, ...) calls: arguments are split on commas outside quotes
//     and parentheses, and unquoted blanks and newlines before an
//     argument are dropped. A call whose arguments run into another
//     top-level macro call on a later line (a missing ')') is an error,
//     and reading resumes at that call;
//   - define(`name', `value') and undefine(`name'): cf.m4 reads its conf*
//     names at the end of the file, so the last definition wins. A defined
//     name written unquoted in an argument, or inside another definition's
//     value, is replaced by its value (m4's rescanning), as are cf.m4's
//     MAIL_SETTINGS_DIR (/etc/mail/) and DATABASE_MAP_TYPE (hash); a
//     definition used that way is not reported on its own;
//   - divert(-1) ... divert(0): text in between is thrown away, as m4 does
//     (include(cf.m4) ends a divert(-1), as cf.m4 itself does);
//   - include and sinclude are never read: cf.m4 (any .../m4/cf.m4) and
//     Debian's /etc/mail/m4/dialup.m4 and provider.m4 are accepted
//     silently, any other include is listed;
//   - VERSIONID, OSTYPE, MAILER(`local'), MAILER(`smtp') and
//     MAILER_DEFINITIONS are accepted; DOMAIN(`debian-mta') is accepted
//     with a note, other DOMAIN files are listed as not read;
//   - text outside any call (not thrown away by divert(-1)) is listed, and
//     so are LOCAL_CONFIG, LOCAL_RULESETS and the other raw sendmail.cf
//     sections, with the lines that follow them;
//   - ifdef, ifelse and the other m4 built-ins are not evaluated and are
//     listed; changequote and changecom are errors, since the rest of the
//     file may then be misread.
//
// # Mapping
//
//	sendmail.mc                                gosendmail.toml
//	---------------------------------------    ------------------------------------------------
//	define(`confDOMAIN_NAME', `h')             hostname = "h" ($ macros are not evaluated: listed)
//	define(`confPRIVACY_FLAGS', `a,b')         privacy = ["a", "b"] (unknown words listed)
//	define(`confMAX_MESSAGE_SIZE', `N')        max_message_size = N (bytes; 0 = no limit: listed)
//	define(`confTO_QUEUEWARN', `4h')           [delivery] queue_warn = "4h" (bare number: hours)
//	define(`confTO_QUEUERETURN', `5d')         [delivery] queue_return = "5d" (bare number: days)
//	  (the _NORMAL variants likewise; _URGENT, _NONURGENT, _DSN are listed)
//	define(`SMART_HOST', `[h]')                [delivery] smart_host = "[h]"; a relay:/esmtp:/smtp:
//	  + RELAY_MAILER_ARGS `TCP $h 587'           prefix is dropped; the port comes from that
//	                                             mailer's *_MAILER_ARGS: "[h]:587"
//	define(`confCLIENT_OPTIONS', `Family=inet')  [delivery] client_family = "inet" (inet6: "inet6",
//	CLIENT_OPTIONS(`Family=...')                 both: "any"); other options are listed
//	FEATURE(`use_cw_file') [+ confCW_FILE]     local_host_names = "/etc/mail/local-host-names"
//	FEATURE(`use_ct_file') [+ confCT_FILE]     trusted_users = "/etc/mail/trusted-users"
//	FEATURE(`virtusertable'[, `hash ... P'])   virtusertable = "P" without .db (default /etc/mail/virtusertable)
//	FEATURE(`mailertable'[, ...])              mailertable = likewise
//	FEATURE(`access_db'[, ...][, `skip'])      access = likewise (SKIP is always understood)
//	FEATURE(`greet_pause', `MS')               [limits] greet_pause = MS milliseconds
//	FEATURE(`no_default_msa')                  no listener for sendmail's default MSA
//	DAEMON_OPTIONS(`Family=inet, Name=N,       [[listen]] name = "N", address = "A:P" ("0.0.0.0:P"
//	  Port=P, Addr=A, M=...')                    without Addr; inet6: "[A]:P", "[::]:P"; an IPv4
//	                                             and an IPv6 wildcard on one port merge into ":P")
//	                                           mode = "smtps" for M=s or port 465, "submission"
//	                                             for port 587 or a Name starting with MSA, else "mta"
//	                                           auth = "required" for M=a, "none" for M=A,
//	                                             "optional" when confAUTH_MECHANISMS (or Debian's
//	                                             sasl.m4) makes sendmail offer AUTH, else "none";
//	                                           M=E (no ETRN) is what gosendmail always does: noted;
//	                                           other modifiers and keys are listed
//	  (no DAEMON_OPTIONS at all)               sendmail's default MTA: "0.0.0.0:25"
//	  (no FEATURE(`no_default_msa'))           sendmail's default MSA: "0.0.0.0:587", submission,
//	                                             unless a listener already takes port 587
//	INPUT_MAIL_FILTER(`n', `S=s, F=T,          [[milter]] name = "n", socket = "s",
//	  T=C:30s;S:1m;R:1m;E:5m')                   on_failure = "tempfail" (F=T), "reject" (F=R),
//	                                             "accept" (neither), timeout_connect, _send,
//	                                             _read, _eom (bare numbers are seconds)
//	MAIL_FILTER + confINPUT_MAIL_FILTERS       the [[milter]] order is confINPUT_MAIL_FILTERS as
//	                                             built up by define and INPUT_MAIL_FILTER; filters
//	                                             that sendmail does not run are listed
//	the opendkim filter (named *dkim*, or on   [dkim] key_table, signing_table as opendkim.conf
//	  opendkim.conf's Socket)                    has them (refile: kept); on_error = "tempfail"
//	                                             (F=T, F=R) or "unsigned" (neither). The filter is
//	                                             reported "replaced by native signing". With
//	                                             Domain/Selector/KeyFile instead of tables, the
//	                                             tables /etc/opendkim/KeyTable and
//	                                             refile:/etc/opendkim/SigningTable are configured
//	                                             and their exact lines reported as actions. When
//	                                             opendkim.conf cannot be read or used, the filter is
//	                                             kept as a [[milter]]; Mode without s: replaced by
//	                                             gosendmail's own verification
//	define(`ALIAS_FILE', `P')                  aliases = "P" (one file; hash: and .db dropped)
//	define(`QUEUE_DIR', `P')                   queue_dir = "P" (queue groups are listed)
//	define(`confCR_FILE', `P'),                relay_domains = "P"
//	  RELAY_DOMAIN_FILE(`P')
//	define(`confMAX_RCPTS_PER_MESSAGE', `N')   [limits] max_recipients = N
//	define(`confMAX_DAEMON_CHILDREN', `N')     [limits] max_connections = N
//	define(`confSERVER_CERT' / `confSERVER_KEY') [tls] cert_file / key_file
//	define(`confDEF_USER_ID', `user')          [delivery] default_user = "user" (numbers listed)
//	MASQUERADE_AS(`dom')                       masquerade_as = "dom"
//	FEATURE(`masquerade_envelope')             masquerade_envelope = true
//	EXPOSED_USER(`u v')                        exposed_users = ["root", "u", "v"]
//
// Not translated, with the reason in the report: the other masquerading
// and address-rewriting macros and features (MASQUERADE_DOMAIN,
// exceptions, genericstable, domaintable...), the FEATUREs and conf* settings
// gosendmail has no switch for (delay_checks, conncontrol, ratecontrol,
// dnsbl, confCONNECTION_RATE_THROTTLE, confBAD_RCPT_THROTTLE, ...),
// confAUTH_MECHANISMS (gosendmail checks AUTH against [auth] users_file,
// not SASL: an action), other mailers, raw sendmail.cf text, and the
// opendkim.conf options gosendmail does not follow (InternalHosts,
// ExternalIgnoreList, Canonicalization other than relaxed/relaxed, ...).
package importmc
