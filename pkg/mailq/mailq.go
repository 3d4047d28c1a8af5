// Package mailq lists and manages the two mail queues: the MSP queue
// (maildrop_dir, drop files left by the sendmail command) and the MTA queue
// (queue_dir, qf/df pairs). It is the mailq command; cmd/mailq and
// `sendmail -bp` both call Main.
//
// # Listing
//
// The text output is byte for byte what Debian's sendmail prints, because
// monitoring-plugins' check_mailq and operators' scripts parse it (`\t` is a
// TAB):
//
//	MSP Queue status...
//	/var/spool/mqueue-client is empty
//	\t\tTotal requests: 0
//	MTA Queue status...
//	\t\t/var/spool/mqueue (2 requests)
//	-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
//	6AQ3n0LQ012206        5 Thu Nov 26 03:49 www-data@example.org
//	                 (Deferred: Connection refused by mx.example.net.)
//	\t\t\t\t\t x@example.net
//	6AQ3n0xR012208X     912 Thu Nov 26 03:49 <>
//	                 (QUARANTINE: held by root)
//	\t\t\t\t\t y@example.net
//	\t\tTotal requests: 2
//
// A section is its directory line, `\t\t<dir> (N requests)` (`request` for
// one), the header, the entries and `\t\tTotal requests: N`; or, with no
// entries, `<dir> is empty` and the total line. The MTA section's total
// counts both queues: the last "Total requests" line is the grand total
// that check_mailq reads, so mail stuck in the maildrop while the daemon is
// down raises its alarm.
//
// An entry is:
//   - the 14-character ID, one status character (`*` the message is locked,
//     i.e. being delivered; `X` held; else a space), the df size as `%8d`, a
//     space, the arrival time in local time as ctime's first 16 characters
//     (`Thu Nov 26 03:49`), a space and the envelope sender (`<>` for the
//     null sender). Addresses are not truncated, unlike sendmail's.
//   - a reason line when there is something to say: 17 spaces and
//     `(<last status>)`; a held message with no status shows
//     `(QUARANTINE: <hold reason>)`, sendmail's wording for its quarantine.
//   - one line per pending (undelivered) recipient: five TABs, a space and
//     the address as the envelope holds it.
//
// Drop files have no status character, no reason line and priority 0; their
// sender is the -f address if one was given, else the user name of the
// file's owner (the uid if it has no name).
//
// Entries are listed oldest first (arrival time, then ID). Control bytes in
// addresses and reasons are shown as `?`, so a hostile envelope cannot
// drive the terminal.
//
// With -v the header is
//
//	-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------
//
// the priority follows the size as `%10d`, the time is `Nov 26 03:49`, and
// recipients follow six TABs with no space.
//
// -Ac prints the MSP queue only and -Am the MTA queue only, each as its bare
// section without the "... Queue status..." heading (what sendmail's own
// binary prints for one queue); their total counts that queue alone.
//
// # Filters
//
// Sendmail's -q filters select what is listed: -qI<substr> (queue ID,
// case-sensitive), -qR<substr> (any pending recipient), -qS<substr> (the
// sender as shown), -qQ<substr> (held, with the hold reason containing
// substr; -qQ alone: every held message). R, S and Q compare without regard
// to case. -q!X negates. Several filters of one letter are OR'ed, different
// letters AND'ed. The counts in the output are of the listed messages.
//
// # JSON
//
// --json prints one object per message and per line, with the field names
// of Postfix's `postqueue -j`:
//
//	{"queue_name":"deferred","queue_id":"6AQ3n0LQ012206","arrival_time":1795664940,
//	 "message_size":5,"forced_expire":false,"sender":"www-data@example.org",
//	 "recipients":[{"address":"x@example.net","delay_reason":"Deferred: ..."}]}
//
// queue_name is "maildrop" for drop files, "hold" for held messages,
// "deferred" after at least one attempt and "active" before the first. The
// null sender is "". delay_reason is the recipient's own last failure, else
// the message's status, and is left out when there is neither. An empty
// queue prints nothing.
//
// # Listing through the daemon
//
// queue_dir (0700) and maildrop_dir (0730) belong to the daemon's user, so
// an ordinary user's mailq cannot read them. When a queue directory it
// needs answers EACCES or EPERM and the caller is not root, mailq asks the
// daemon over the control socket with the command "list", and prints the
// answer's Output as it is:
//
//	-> {"cmd":"list","args":["-v","-Am","-qRalice@example.org","-q!Ifoo"]}
//	<- {"ok":true,"output":"\t\t/var/spool/mqueue (1 request)\n..."}
//	<- {"error":"You are not permitted to see the queue","status":77}
//
// Args are mailq's listing options, one per element, each in exactly one
// of these forms (ListArgs.Encode writes them, ParseListArgs reads them):
//
//	-v        the -v layout
//	--json    one JSON object per message
//	-Ac, -Am  the MSP queue only, the MTA queue only
//	-q<spec>  a filter, <spec> as after mailq's -q: [!]I, R, S or Q and the
//	          substring glued on ("-qRalice", "-q!Sbob", "-qQ")
//
// No args is the default listing of both queues. Anything else is refused
// with status 64. The daemon reads the queues asked for with its own
// privileges, formats them with Print, and logs the files it could not
// read (they may be other users' messages, so the caller is not told).
// Who sees what is decided by the peer's uid from the kernel
// (SO_PEERCRED): root and the daemon's own user see every message; any
// other user sees only the messages they submitted (Item.UID: the drop
// file's owner, the qf's U line; mail that came over SMTP is no user's),
// and the "(N requests)" and "Total requests" counts count only those;
// with mailq_all_users every user sees every message. With the privacy
// word restrictmailq users other than root and the daemon's are refused
// altogether with sendmail's "You are not permitted to see the queue",
// status 77 (EX_NOPERM), whatever mailq_all_users says. A refusal's
// status is the client's exit status. Root never asks the daemon, so
// root's mailq works while the daemon is down.
//
// # Managing the queues
//
// Subcommands of mailq change the queues (Manager does the work): remove
// (by ID from either queue, or by --sender, --recipient, --all --yes),
// hold and release (MTA queue only), show (envelope and header of one
// message) and flush (asks the daemon's queue runner over the control
// socket; mailq never delivers). Every change to an MTA message is made
// under its lock (spool.Queue.Lock), prints one line per message
// ("6AQ3n0LQ012206: removed") and logs one ("6AQ3n0LQ012206: removed by
// root", tag "sendmail").
//
// # Errors and exit status
//
// A corrupt queue or drop file is a warning on stderr and never stops the
// listing: the exit status of a listing is 0 (check_mailq reads any other
// as CRITICAL) unless a queue directory itself cannot be read: 77 when
// permission is denied (to root; other users ask the daemon), 69
// otherwise, with a one-line message. A listing asked of the daemon fails
// with 69 when no daemon answers, and with the status of the daemon's
// refusal otherwise (77 under restrictmailq).
//
// Every failure is one line on stderr with a sysexits status: 64 usage
// (bad flag, malformed queue ID, remove --all without --yes), 65 corrupt
// queue file (show), 69 not in the queue, or still in the maildrop for
// hold/release, or no queue runner for flush, 74 the listing could not be
// written, 75 the message is being delivered (locked) or still being
// submitted, 77 permission denied, 78 bad configuration. With several IDs
// every one is tried and the status is that of the first failure.
package mailq

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// Queue names as --json shows them (Postfix's names where they fit).
const (
	QueueMaildrop = "maildrop"
	QueueActive   = "active"
	QueueDeferred = "deferred"
	QueueHold     = "hold"
)

// Item is one message as mailq lists it, from either queue.
type Item struct {
	ID       string
	Queue    string // QueueMaildrop, QueueActive, QueueDeferred or QueueHold
	Mark     byte   // status character: '*' being delivered, 'X' held, ' '
	Size     int64
	Priority int64
	Arrival  time.Time
	Sender   string // envelope sender; "" is the null sender
	Status   string // last status message, e.g. "Deferred: ..."; "" if none
	Hold     string // hold reason; "" if not held
	Rcpts    []Rcpt // pending recipients only
	// UID is the local user who submitted the message: a drop file's
	// owner, a queued message's qf U line; -1 for mail that came over
	// SMTP. The daemon's listing for an ordinary user shows only theirs.
	// It is not part of the output.
	UID int
}

// Rcpt is one pending recipient.
type Rcpt struct {
	Addr   string
	Reason string // this recipient's last failure; "" if none
}

// ShownSender is the sender as the listing shows it.
func (it *Item) ShownSender() string {
	if it.Sender == "" {
		return "<>"
	}
	return it.Sender
}

// Reason is the text of the entry's reason line; "" for none.
func (it *Item) Reason() string {
	if it.Status == "" && it.Hold != "" {
		return "QUARANTINE: " + it.Hold
	}
	return it.Status
}

// Section is one queue to print: its directory and its messages.
type Section struct {
	Dir   string
	Items []Item
}

// Options change what Print prints.
type Options struct {
	Verbose bool   // -v layout
	JSON    bool   // one JSON object per message
	Filter  Filter // only matching messages are printed and counted
	// Headings prints "MSP Queue status..." and "MTA Queue status..."
	// before the sections (the combined listing of Debian's mailq).
	Headings bool
}

const (
	header        = "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n"
	headerVerbose = "-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------\n"
	reasonIndent  = "                 " // 17 spaces
	rcptIndent    = "\t\t\t\t\t "
	rcptVerbose   = "\t\t\t\t\t\t"
)

// Print writes the listing of msp and then mta; a nil section is left out.
// The last section's total counts the messages of both.
func Print(w io.Writer, msp, mta *Section, opts Options) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var shown [2][]Item
	for i, s := range []*Section{msp, mta} {
		if s != nil {
			shown[i] = opts.Filter.Apply(s.Items)
		}
	}
	if opts.JSON {
		if err := printJSON(bw, shown[0], shown[1]); err != nil {
			return err
		}
		return bw.Flush()
	}
	p := printer{w: bw, verbose: opts.Verbose}
	total := 0
	if msp != nil {
		if opts.Headings {
			bw.WriteString("MSP Queue status...\n")
		}
		total += len(shown[0])
		p.section(msp.Dir, shown[0], total)
	}
	if mta != nil {
		if opts.Headings {
			bw.WriteString("MTA Queue status...\n")
		}
		total += len(shown[1])
		p.section(mta.Dir, shown[1], total)
	}
	return bw.Flush()
}

// printer formats entries into one reused buffer: a queue of 100,000
// messages must list in well under a second, so no fmt per line.
type printer struct {
	w       *bufio.Writer
	verbose bool
	buf     []byte
}

func (p *printer) section(dir string, items []Item, total int) {
	b := p.buf[:0]
	if len(items) == 0 {
		b = appendClean(b, dir)
		b = append(b, " is empty\n"...)
	} else {
		b = append(b, "\t\t"...)
		b = appendClean(b, dir)
		b = append(b, " ("...)
		b = strconv.AppendInt(b, int64(len(items)), 10)
		if len(items) == 1 {
			b = append(b, " request)\n"...)
		} else {
			b = append(b, " requests)\n"...)
		}
		if p.verbose {
			b = append(b, headerVerbose...)
		} else {
			b = append(b, header...)
		}
	}
	p.w.Write(b)
	for i := range items {
		p.entry(&items[i])
	}
	b = append(b[:0], "\t\tTotal requests: "...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, '\n')
	p.w.Write(b)
	p.buf = b
}

func (p *printer) entry(it *Item) {
	b := append(p.buf[:0], it.ID...)
	mark := it.Mark
	if mark == 0 {
		mark = ' '
	}
	b = append(b, mark)
	b = appendPadded(b, it.Size, 8)
	b = append(b, ' ')
	t := it.Arrival.Local()
	if p.verbose {
		b = appendPadded(b, it.Priority, 10)
		b = append(b, ' ')
		b = t.AppendFormat(b, "Jan _2 15:04")
	} else {
		b = t.AppendFormat(b, "Mon Jan _2 15:04")
	}
	b = append(b, ' ')
	b = appendClean(b, it.ShownSender())
	b = append(b, '\n')
	if reason := it.Reason(); reason != "" {
		b = append(b, reasonIndent+"("...)
		b = appendClean(b, reason)
		b = append(b, ")\n"...)
	}
	indent := rcptIndent
	if p.verbose {
		indent = rcptVerbose
	}
	for _, r := range it.Rcpts {
		b = append(b, indent...)
		b = appendClean(b, r.Addr)
		b = append(b, '\n')
	}
	p.w.Write(b)
	p.buf = b
}

// appendPadded appends n right-aligned in width columns, as printf's %*d.
func appendPadded(b []byte, n int64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], n, 10)
	for i := len(d); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, d...)
}

// appendClean appends s with control bytes replaced by '?': envelope
// fields come from strangers and end up on an operator's terminal.
func appendClean(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		b = append(b, c)
	}
	return b
}

// jsonItem is one line of --json, in postqueue -j's field names and order.
type jsonItem struct {
	QueueName    string     `json:"queue_name"`
	QueueID      string     `json:"queue_id"`
	ArrivalTime  int64      `json:"arrival_time"`
	MessageSize  int64      `json:"message_size"`
	ForcedExpire bool       `json:"forced_expire"`
	Sender       string     `json:"sender"`
	Recipients   []jsonRcpt `json:"recipients"`
}

type jsonRcpt struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason,omitempty"`
}

func printJSON(w io.Writer, lists ...[]Item) error {
	enc := json.NewEncoder(w)
	// Addresses with display names keep their <>; JSON readers are not
	// HTML pages.
	enc.SetEscapeHTML(false)
	var j jsonItem
	for _, items := range lists {
		for i := range items {
			it := &items[i]
			j = jsonItem{
				QueueName:   it.Queue,
				QueueID:     it.ID,
				ArrivalTime: it.Arrival.Unix(),
				MessageSize: it.Size,
				Sender:      it.Sender,
				Recipients:  j.Recipients[:0],
			}
			for _, r := range it.Rcpts {
				reason := r.Reason
				if reason == "" {
					reason = it.Status
				}
				j.Recipients = append(j.Recipients, jsonRcpt{Address: r.Addr, DelayReason: reason})
			}
			if j.Recipients == nil {
				j.Recipients = []jsonRcpt{}
			}
			if err := enc.Encode(&j); err != nil {
				return err
			}
		}
	}
	return nil
}
