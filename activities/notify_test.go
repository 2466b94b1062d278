package activities

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/mail"
)

type fakeSender struct {
	sent []mail.Message
	err  error
}

func (f *fakeSender) Send(ctx context.Context, m mail.Message) (string, error) {
	if f.err != nil {
		return "", f.err
	}
	f.sent = append(f.sent, m)
	return "<id@joinery.test>", nil
}

type fakeMailLookup struct {
	mail  map[string]string
	err   error
	calls []string
}

func (f *fakeMailLookup) LookupMail(ctx context.Context, username string) (string, error) {
	f.calls = append(f.calls, username)
	return f.mail[username], f.err
}

func TestMailNotifierRendersEachKind(t *testing.T) {
	kinds := map[string]string{
		"approval-request": "Approval needed: joiner 4711",
		"reminder":         "Reminder: joiner 4711 still awaits your approval",
		"escalation":       "Escalated to you: joiner 4711 awaits approval",
		"outcome":          "Joiner 4711: outcome",
		"expiry-reminder":  "Access of joiner 4711 ends soon",
		"something-new":    "Joiner 4711",
	}
	for kind, subject := range kinds {
		t.Run(kind, func(t *testing.T) {
			s := &fakeSender{}
			book := DirectoryAddressBook{Lookup: &fakeMailLookup{mail: map[string]string{"ada.lovelace": "ada@corp.example"}}, Domain: "joinery.test"}
			n := MailNotifier{Sender: s, Addresses: book, InboxURL: "https://inbox.example/"}
			require.NoError(t, n.Notify(context.Background(), Notification{To: "ada.lovelace", HRISID: "4711", Kind: kind, Message: "please approve joiner 4711 (John Smith, Platform Engineer)"}))
			require.Len(t, s.sent, 1)
			m := s.sent[0]
			require.Equal(t, "ada@corp.example", m.To, "the directory's mail attribute wins")
			require.Equal(t, subject, m.Subject)
			require.NotContains(t, m.Subject, "John", "names stay out of the subject")
			require.Contains(t, m.Body, "Hello ada.lovelace,")
			require.Contains(t, m.Body, "please approve joiner 4711 (John Smith, Platform Engineer)")
			require.Contains(t, m.Body, "\nhttps://inbox.example/joiners/joiner-4711\n")
		})
	}
}

func TestDirectoryAddressBookFallback(t *testing.T) {
	ctx := context.Background()
	l := &fakeMailLookup{mail: map[string]string{
		"has.mail":  "has.mail@corp.example",
		"bad.mail":  "bad@corp.example\r\nBcc: evil@evil.test",
		"list.mail": "a@corp.example, evil@evil.test",
	}}
	book := DirectoryAddressBook{Lookup: l, Domain: "joinery.test"}
	for user, want := range map[string]string{
		"has.mail":  "has.mail@corp.example",
		"no.mail":   "no.mail@joinery.test",
		"bad.mail":  "bad.mail@joinery.test",
		"list.mail": "list.mail@joinery.test",
	} {
		got, err := book.Address(ctx, user)
		require.NoError(t, err, user)
		require.Equal(t, want, got, user)
	}
	got, err := DirectoryAddressBook{Domain: "joinery.test"}.Address(ctx, "grace.hopper")
	require.NoError(t, err)
	require.Equal(t, "grace.hopper@joinery.test", got, "no directory lookup: the mail domain")

	_, err = DirectoryAddressBook{}.Address(ctx, "grace.hopper")
	requireNonRetryable(t, err, ErrTypeInvalidNotification)

	// A directory outage is retried, not papered over with a guessed address.
	l.err = connectors.Transient("ldap", "lookup", "DirectoryUnavailable", "down", nil)
	_, err = book.Address(ctx, "has.mail")
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	require.False(t, ae.NonRetryable())
}

// Adversary: a username or joiner id that could bend the address, the
// headers or the link never reaches the address book or the sender.
func TestMailNotifierRefusesUnsafeNames(t *testing.T) {
	s := &fakeSender{}
	l := &fakeMailLookup{}
	n := MailNotifier{Sender: s, Addresses: DirectoryAddressBook{Lookup: l, Domain: "joinery.test"}, InboxURL: "http://127.0.0.1:8092"}
	for _, to := range []string{
		"ada\r\nBcc: evil@evil.test", "ada\nX: y", "evil@evil.test", "ada,evil", "ada evil", "<ada>", "", ".ada",
		"../ada", strings.Repeat("a", 65),
	} {
		err := n.Notify(context.Background(), Notification{To: to, HRISID: "4711", Kind: "reminder"})
		requireNonRetryable(t, err, ErrTypeInvalidNotification)
	}
	for _, id := range []string{"4711/../../admin", "4711?x=1", "4711\r\nX: y", "", "47 11"} {
		err := n.Notify(context.Background(), Notification{To: "ada.lovelace", HRISID: id, Kind: "reminder"})
		requireNonRetryable(t, err, ErrTypeInvalidNotification)
	}
	require.Empty(t, l.calls)
	require.Empty(t, s.sent)
}

func TestMailNotifierClassifiesSendErrors(t *testing.T) {
	book := DirectoryAddressBook{Domain: "joinery.test"}
	n := MailNotifier{Sender: &fakeSender{err: connectors.Permanent(mail.System, "rcpt-to", mail.TypeRejected, "server answered 550", nil)}, Addresses: book}
	err := n.Notify(context.Background(), Notification{To: "ada.lovelace", HRISID: "1", Kind: "reminder"})
	requireNonRetryable(t, err, mail.TypeRejected)

	n.Sender = &fakeSender{err: connectors.Transient(mail.System, "connect", mail.TypeUnavailable, "refused", nil)}
	err = n.Notify(context.Background(), Notification{To: "ada.lovelace", HRISID: "1", Kind: "reminder"})
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, mail.TypeUnavailable, ae.Type())
	require.False(t, ae.NonRetryable())
}

func TestMailNotifierRedactsSecretShapes(t *testing.T) {
	s := &fakeSender{}
	n := MailNotifier{Sender: s, Addresses: DirectoryAddressBook{Domain: "joinery.test"}, InboxURL: "http://127.0.0.1:8092"}
	msg := "token hvs.CAESIJ2x9vW3aBcDeFgHiJkLmNoPqRsTuVw and legacy s.AbCdEfGhIjKlMnOpQrStUvWx and " + strings.Repeat("Zx9", 15)
	require.NoError(t, n.Notify(context.Background(), Notification{To: "ada.lovelace", HRISID: "1", Kind: "outcome", Message: msg}))
	body := s.sent[0].Body
	require.NotContains(t, body, "hvs.CAES")
	require.NotContains(t, body, "s.AbCd")
	require.NotContains(t, body, "Zx9Zx9Zx9")
	require.Equal(t, 3, strings.Count(body, "[redacted]"))
}

func requireNonRetryable(t *testing.T, err error, typ string) {
	t.Helper()
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "want an application error, got %T: %v", err, err)
	require.Equal(t, typ, ae.Type())
	require.True(t, ae.NonRetryable(), "%v", err)
}
