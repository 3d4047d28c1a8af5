package importmc

// Why sendmail's macros, features and settings that import-mc knows do not
// carry over. Anything not listed gets a generic reason.

const (
	noMasquerade = "gosendmail masquerades only with masquerade_as (the From: of local mail, and the envelope with masquerade_envelope): no per-domain lists, exceptions or recipient rewriting"
	noRelayKnob  = "relaying is decided by relay_from, relay_domains, the access file and SMTP AUTH; this variant has no switch"
	noRewrite    = "gosendmail does not rewrite addresses"
)

// macroWhy covers cf.m4's macros other than those translated.
var macroWhy = map[string]string{
	"MASQUERADE_DOMAIN":         noMasquerade,
	"MASQUERADE_DOMAIN_FILE":    noMasquerade,
	"MASQUERADE_EXCEPTION":      noMasquerade,
	"MASQUERADE_EXCEPTION_FILE": noMasquerade,
	"EXPOSED_USER_FILE":         noMasquerade,
	"GENERICS_DOMAIN":           noRewrite + " (no genericstable)",
	"GENERICS_DOMAIN_FILE":      noRewrite + " (no genericstable)",
	"LOCAL_DOMAIN":              "add these names to the local_host_names file (/etc/mail/local-host-names) instead",
	"RELAY_DOMAIN":              "add these to the relay_domains file (/etc/mail/relay-domains) instead",
	"VIRTUSER_DOMAIN":           "no list of virtual domains: list them in the local_host_names file",
	"VIRTUSER_DOMAIN_FILE":      "no list of virtual domains: list them in the local_host_names file",
	"CANONIFY_DOMAIN":           "no switch for it in gosendmail",
	"CANONIFY_DOMAIN_FILE":      "no switch for it in gosendmail",
	"LOCAL_USER":                "no class of local-only users",
	"TRUST_AUTH_MECH":           "gosendmail checks AUTH against [auth] users_file, not SASL mechanisms",
	"QUEUE_GROUP":               "gosendmail has one queue (queue_dir), no queue groups",
	"LDAPROUTE_DOMAIN":          "no LDAP routing",
	"LDAPROUTE_DOMAIN_FILE":     "no LDAP routing",
	"MODIFY_MAILER_FLAGS":       "gosendmail has no mailer definitions",
	"HACK":                      "hacks are sendmail.cf code",
	"SITE":                      "no UUCP",
	"UUCPSMTP":                  "no UUCP",
}

// featureWhy covers sendmail's FEATUREs other than those translated.
var featureWhy = map[string]string{
	"accept_unqualified_senders":  "no switch for it in gosendmail",
	"accept_unresolvable_domains": "no switch for it in gosendmail",
	"allmasquerade":               noMasquerade,
	"always_add_domain":           "no switch for it in gosendmail",
	"authinfo":                    "no client AUTH table (authinfo) in gosendmail",
	"badmx":                       "no bad-MX check in gosendmail",
	"bestmx_is_local":             "add the domains to local_host_names instead",
	"bitdomain":                   "no BITNET",
	"blacklist_recipients":        "To: entries of the access file apply anyway; no switch for it",
	"blocklist_recipients":        "To: entries of the access file apply anyway; no switch for it",
	"block_bad_helo":              "no HELO check switch in gosendmail",
	"check_cert_altnames":         "no switch for it in gosendmail",
	"compat_check":                "no sender/recipient pair checks (Compat: entries)",
	"conncontrol":                 "per-client connection limits come from [limits] max_connections_per_ip, not from access ClientConn: entries",
	"delay_checks":                "the order of gosendmail's access checks is fixed",
	"dnsbl":                       "no DNS blocklist checks in gosendmail",
	"domaintable":                 noRewrite + " (no domaintable)",
	"enhdnsbl":                    "no DNS blocklist checks in gosendmail",
	"generics_entire_domain":      noRewrite + " (no genericstable)",
	"genericstable":               noRewrite + " (no genericstable)",
	"ldap_routing":                "no LDAP routing",
	"limited_masquerade":          noMasquerade,
	"local_lmtp":                  "gosendmail delivers local mail itself (mail_spool_dir, [delivery] local_format): no LMTP",
	"local_no_masquerade":         noMasquerade,
	"local_procmail":              "gosendmail delivers local mail itself (mail_spool_dir, [delivery] local_format); run procmail from ~/.forward or an alias instead",
	"lookupdotdomain":             "no switch for it in gosendmail",
	"loose_relay_check":           noRelayKnob,
	"masquerade_entire_domain":    noMasquerade,
	"msp":                         "a submit.mc feature: gosendmail's sendmail command needs no configuration of its own",
	"mtamark":                     "no MTA mark checks",
	"nocanonify":                  "no switch for it in gosendmail",
	"nopercenthack":               "no switch for it in gosendmail",
	"notsticky":                   "no switch for it in gosendmail",
	"nouucp":                      "no UUCP in gosendmail anyway",
	"nullclient":                  "no null-client mode: [delivery] smart_host relays foreign mail only, and local mail is still delivered locally",
	"prefixmod":                   "no switch for it in gosendmail",
	"preserve_local_plus_detail":  "no switch for it in gosendmail",
	"preserve_luser_host":         "no switch for it in gosendmail",
	"promiscuous_relay":           noRelayKnob + " (an open relay is not offered)",
	"queuegroup":                  "gosendmail has one queue (queue_dir), no queue groups",
	"ratecontrol":                 "no connection-rate limit in gosendmail (access ClientRate: entries are not used)",
	"redirect":                    "no .REDIRECT addresses",
	"relay_based_on_MX":           noRelayKnob,
	"relay_entire_domain":         noRelayKnob,
	"relay_hosts_only":            noRelayKnob,
	"relay_local_from":            noRelayKnob + " (relaying on the sender's address alone is not offered)",
	"relay_mail_from":             noRelayKnob + " (relaying on the sender's address alone is not offered)",
	"require_rdns":                "no reverse-DNS requirement in gosendmail",
	"smrsh":                       "gosendmail runs |program aliases as [delivery] default_user, without smrsh's program list",
	"stickyhost":                  "no switch for it in gosendmail",
	"sts":                         "no MTA-STS in gosendmail",
	"tls_failures":                "no switch for it in gosendmail",
	"tls_session_features":        "no per-session TLS features",
	"use_client_ptr":              "no switch for it in gosendmail",
	"uucpdomain":                  "no UUCP",
	"virtuser_entire_domain":      "no switch for it in gosendmail",
	"check_other":                 "no switch for it in gosendmail",
}

// defineWhy covers conf* settings with a more useful reason than the
// generic one.
var defineWhy = map[string]string{
	"confCONNECTION_RATE_THROTTLE":    "no connection-rate limit in gosendmail ([limits] bounds concurrent connections)",
	"confCONNECTION_RATE_WINDOW_SIZE": "no connection-rate limit in gosendmail ([limits] bounds concurrent connections)",
	"confRUN_AS_USER":                 "gosendmail runs as its own account (user, default gosendmail)",
	"confAUTH_OPTIONS":                "no AUTH options: [[listen]] auth says where AUTH is offered or required",
	"confLOG_LEVEL":                   "no log level in gosendmail",
	"confQUEUE_LA":                    "no load-average limits in gosendmail",
	"confREFUSE_LA":                   "no load-average limits in gosendmail",
	"confDELAY_LA":                    "no load-average limits in gosendmail",
	"MAIL_HUB":                        "no hub for local mail: use aliases or the virtusertable",
	"LOCAL_RELAY":                     "no relay for local users: use aliases or the virtusertable",
	"LUSER_RELAY":                     "no relay for unknown local users: use a virtusertable catch-all (@domain)",
	"confCACERT":                      "gosendmail does not ask clients for certificates",
	"confCACERT_PATH":                 "gosendmail does not ask clients for certificates",
	"confCLIENT_CERT":                 "no client certificate for outbound connections",
	"confCLIENT_KEY":                  "no client certificate for outbound connections",
	"confBAD_RCPT_THROTTLE":           "no bad-recipient throttle in gosendmail",
}

// modifierWhy names DAEMON_OPTIONS M= letters.
var modifierWhy = map[rune]string{
	'b': "bind outbound connections to the receiving address",
	'c': "canonify host names",
	'C': "do not canonify host names",
	'f': "require fully qualified addresses",
	'h': "use the interface's name for HELO",
	'u': "allow unqualified addresses",
	'O': "optional socket",
	'S': "no STARTTLS",
}
