package activities

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/mail"
)

// MailSender sends one e-mail; *mail.Sender implements it.
type MailSender interface {
	Send(ctx context.Context, m mail.Message) (messageID string, err error)
}

// AddressBook turns a directory username into the person's e-mail address.
type AddressBook interface {
	Address(ctx context.Context, username string) (string, error)
}

// MailLookup reads a person's mail attribute by username from the
// directory: "" and no error when the entry or the attribute is missing.
// connectors/directory does not offer it yet (its LookupPerson returns no
// mail); run wires it in when the directory client gains the method.
type MailLookup interface {
	LookupMail(ctx context.Context, username string) (string, error)
}

// DirectoryAddressBook resolves usernames through the directory's mail
// attribute, falling back to username@Domain when the directory has none
// (or no Lookup is configured).
type DirectoryAddressBook struct {
	Lookup MailLookup
	// Domain is JOINERY_MAIL_DOMAIN.
	Domain string
}

// ErrTypeInvalidNotification marks a notification that can never be sent
// (unsafe recipient or joiner id, no address): retrying cannot help.
const ErrTypeInvalidNotification = "InvalidNotification"

// safeUsername is what a directory username must look like before it
// becomes part of an address or a link: no '@', no whitespace, nothing an
// SMTP command line or a header could be bent with.
var safeUsername = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// safeJoinerID is the HRIS id (or non-human request key) in a link.
var safeJoinerID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Address returns the directory's mail value when it is a clean bare
// address, else username@Domain.
func (b DirectoryAddressBook) Address(ctx context.Context, username string) (string, error) {
	if !safeUsername.MatchString(username) {
		return "", invalidNotification("recipient is not a valid directory username")
	}
	if b.Lookup != nil {
		m, err := b.Lookup.LookupMail(ctx, username)
		if err != nil {
			return "", classify(err)
		}
		// The attribute is data someone typed: used only when it is a
		// bare address that cannot add a header or a recipient.
		if m = strings.TrimSpace(m); m != "" && mail.CheckAddress(m) == nil {
			return m, nil
		}
	}
	if b.Domain == "" {
		return "", invalidNotification("no mail address for the recipient and no JOINERY_MAIL_DOMAIN")
	}
	addr := username + "@" + b.Domain
	if err := mail.CheckAddress(addr); err != nil {
		return "", invalidNotification("JOINERY_MAIL_DOMAIN does not make a valid address")
	}
	return addr, nil
}

// MailNotifier e-mails notifications: each names the joiner and links to
// its page in the approval inbox, where the person decides. Mail only
// points there; it carries no decision token, credential or other secret.
type MailNotifier struct {
	Sender    MailSender
	Addresses AddressBook
	// InboxURL is JOINERY_INBOX_URL, the inbox's base URL.
	InboxURL string
}

// Notify renders n for its kind and sends it to the person's address.
func (m MailNotifier) Notify(ctx context.Context, n Notification) error {
	if !safeUsername.MatchString(n.To) {
		return invalidNotification("recipient is not a valid directory username")
	}
	if !safeJoinerID.MatchString(n.HRISID) {
		return invalidNotification("joiner id is not safe for a link")
	}
	to, err := m.Addresses.Address(ctx, n.To)
	if err != nil {
		return err
	}
	subject, body := m.render(n)
	if _, err := m.Sender.Send(ctx, mail.Message{To: to, Subject: subject, Body: body, Key: notificationKey(ctx, n)}); err != nil {
		return classify(err)
	}
	return nil
}

// notificationKey identifies one notification across the retries of the
// activity that sends it, for mail.Message.Key (the Message-ID derives from
// it): the workflow ID and run, the kind and the activity ID. The activity
// ID is the workflow's sequence number for the scheduled activity, the
// same for every attempt and different for the next reminder of the same
// kind, so a send retried after the server accepted it (the worker died,
// or the answer was lost) repeats the Message-ID and mail clients fold the
// two into one, while two reminders stay two. The recipient is part of it
// too, so one activity that someday notifies several people gives each a
// message of their own. Outside an activity (tests, tools) there is no
// identity to derive from and each message is new.
func notificationKey(ctx context.Context, n Notification) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	info := activity.GetInfo(ctx)
	return strings.Join([]string{info.WorkflowExecution.ID, info.WorkflowExecution.RunID, n.Kind, info.ActivityID, n.To}, "\x00")
}

// InboxLink is the joiner's page in the approval inbox.
func (m MailNotifier) InboxLink(hrisID string) string {
	return strings.TrimRight(m.InboxURL, "/") + "/joiners/" + url.PathEscape("joiner-"+hrisID)
}

// render returns subject and body. The subject names only the joiner's id:
// names and job titles stay inside the message, out of mail-server logs.
func (m MailNotifier) render(n Notification) (subject, body string) {
	var lead, action string
	switch n.Kind {
	case "approval-request":
		subject = fmt.Sprintf("Approval needed: joiner %s", n.HRISID)
		lead = "A joiner needs your decision."
		action = "Review the plan and approve or reject it in the approval inbox:"
	case "reminder":
		subject = fmt.Sprintf("Reminder: joiner %s still awaits your approval", n.HRISID)
		lead = "A joiner is still waiting for your decision."
		action = "Approve or reject it in the approval inbox:"
	case "escalation":
		subject = fmt.Sprintf("Escalated to you: joiner %s awaits approval", n.HRISID)
		lead = "A joiner's approval has been escalated to you because it was not decided in time."
		action = "You may approve or reject it in the approval inbox:"
	case "outcome":
		subject = fmt.Sprintf("Joiner %s: outcome", n.HRISID)
		lead = "A joiner you are responsible for has an outcome."
		action = "Details are in the approval inbox:"
	case "expiry-reminder":
		subject = fmt.Sprintf("Access of joiner %s ends soon", n.HRISID)
		lead = "Time-bound access you own is about to end."
		action = "Review it (and extend it if policy allows) from the joiner's page:"
	default:
		// A kind added to the workflow before this renderer learns it
		// still reaches the person, plainly.
		subject = fmt.Sprintf("Joiner %s", n.HRISID)
		lead = "Joinery has news about a joiner."
		action = "Details are in the approval inbox:"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n%s\n\n", n.To, lead)
	if msg := redactSecrets(strings.TrimSpace(n.Message)); msg != "" {
		b.WriteString(msg + "\n\n")
	}
	fmt.Fprintf(&b, "%s\n%s\n\n", action, m.InboxLink(n.HRISID))
	b.WriteString("This message was sent automatically by Joinery; replies are not read.\n" +
		"Joinery never sends passwords or tokens by e-mail: decide only in the inbox, after signing in.\n")
	return subject, b.String()
}

// secretLike matches strings shaped like credentials: Vault tokens
// (hvs./hvb./hvr., legacy s./b.), wrapping tokens and long random runs.
// Notification messages are written by the workflow and carry none; this
// is a second line of defence, so a future message that did cannot leak.
var secretLike = regexp.MustCompile(`\b(?:hv[sbr]|[sb])\.[A-Za-z0-9_-]{20,}\b|\b[A-Za-z0-9+/_-]{40,}={0,2}`)

func redactSecrets(s string) string {
	return secretLike.ReplaceAllString(s, "[redacted]")
}

func invalidNotification(msg string) error {
	return temporal.NewNonRetryableApplicationError("notify: "+msg, ErrTypeInvalidNotification, nil)
}
