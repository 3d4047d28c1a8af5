/*
 * noopmilter: the benchmark's milter that changes nothing, written with
 * sendmail's libmilter (Debian's libmilter-dev), the library opendkim,
 * clamav-milter, spamass-milter, opendmarc and milter-greylist are built on.
 *
 * It asks for every step of every message (connect, HELO, MAIL, RCPT,
 * DATA, each header field, end of header, the body). How it answers is
 * the second argument:
 *   eom     answers only the end of the message: the steps before are
 *           sent with SMFIP_NR_* ("no reply"), as rspamd asks for. It has
 *           no end-of-message callback, so libmilter answers "continue"
 *           there, as for any step a filter leaves alone;
 *   accept  the same, but it answers "accept" at the end of the message,
 *           as rspamd does for mail it lets through;
 *   all     answers every step with "continue", as opendkim does.
 *
 * Usage: noopmilter unix:/path|inet:PORT@HOST eom|accept|all
 * It runs until killed.
 */
#include <stdio.h>
#include <string.h>
#include <libmilter/mfapi.h>

static int eom_only;

static sfsistat step(void) { return eom_only ? SMFIS_NOREPLY : SMFIS_CONTINUE; }
static sfsistat on_connect(SMFICTX *c, char *host, _SOCK_ADDR *addr) { return step(); }
static sfsistat on_helo(SMFICTX *c, char *name) { return step(); }
static sfsistat on_args(SMFICTX *c, char **argv) { return step(); }
static sfsistat on_header(SMFICTX *c, char *name, char *value) { return step(); }
static sfsistat on_step(SMFICTX *c) { return step(); }
static sfsistat on_body(SMFICTX *c, unsigned char *chunk, size_t len) { return step(); }
static sfsistat on_unknown(SMFICTX *c, const char *cmd) { return step(); }
static sfsistat on_eom(SMFICTX *c) { return SMFIS_ACCEPT; } /* mode accept only */
static sfsistat on_end(SMFICTX *c) { return SMFIS_CONTINUE; }

static sfsistat on_negotiate(SMFICTX *c, unsigned long f0, unsigned long f1, unsigned long f2,
			     unsigned long f3, unsigned long *pf0, unsigned long *pf1,
			     unsigned long *pf2, unsigned long *pf3)
{
	const unsigned long noreply = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
		SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH |
		SMFIP_NR_BODY;

	*pf0 = 0; /* no actions: it changes nothing */
	*pf1 = eom_only ? (f1 & noreply) : 0;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	"noop", SMFI_VERSION, 0,
	on_connect, on_helo, on_args, on_args, on_header, on_step, on_body,
	on_eom, on_end, on_end, on_unknown, on_step, on_negotiate,
};

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[2], "eom") != 0 && strcmp(argv[2], "accept") != 0 &&
			  strcmp(argv[2], "all") != 0)) {
		fprintf(stderr, "usage: noopmilter unix:/path|inet:PORT@HOST eom|accept|all\n");
		return 64;
	}
	eom_only = strcmp(argv[2], "all") != 0;
	if (strcmp(argv[2], "accept") != 0)
		desc.xxfi_eom = NULL;
	if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "noopmilter: cannot listen on %s\n", argv[1]);
		return 71;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 71;
}
