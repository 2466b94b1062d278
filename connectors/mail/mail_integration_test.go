package mail

import (
	"context"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "joinery@joinery.test"
	}
	s, err := New(cfg)
	require.NoError(t, err)
	return s
}

// A notification through the dev stack's Mailpit arrives as sent: the
// envelope and headers Joinery wrote, the Q-encoded subject decoded, the
// quoted-printable body intact (a long link included), one recipient.
func TestIntegrationStackMailpitDelivers(t *testing.T) {
	mp := stackMailpit(t)
	s := newSender(t, Config{Addr: mp.SMTP})
	id := tag(t)
	link := "http://127.0.0.1:8092/joiners/joiner-" + id + "?from=mail&note=" + strings.Repeat("long-enough-to-wrap-", 5)
	subject := "Approval needed: joiner " + id + " — Zoë Ångström"
	body := "Hello ada.lovelace,\n\nplease decide on Zoë's access.\n.\nA line with only a dot above; = and trailing space \n\nDecide here:\n" + link + "\n"
	before := time.Now()
	mid, err := s.Send(ctxT(t), Message{To: "ada.lovelace@joinery.test", Subject: subject, Body: body})
	require.NoError(t, err)
	require.Regexp(t, `^<[0-9a-f]{32}\.\d+@joinery\.test>$`, mid)

	m, h, raw := mp.waitOne(t, mid)
	require.Equal(t, subject, m.Subject)
	require.Equal(t, "joinery@joinery.test", m.From.Address)
	require.Len(t, m.To, 1)
	require.Equal(t, "ada.lovelace@joinery.test", m.To[0].Address)
	require.Empty(t, m.Cc)
	require.Empty(t, m.Bcc)
	require.Equal(t, strings.ReplaceAll(body, "\n", "\r\n"), strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n"))
	require.Contains(t, m.Text, link, "the link survives quoted-printable soft breaks")

	require.Equal(t, []string{"1.0"}, h["Mime-Version"])
	require.Equal(t, []string{`text/plain; charset="utf-8"`}, h["Content-Type"])
	require.Equal(t, []string{"quoted-printable"}, h["Content-Transfer-Encoding"])
	require.Equal(t, []string{"auto-generated"}, h["Auto-Submitted"])
	require.Equal(t, []string{mid}, h["Message-Id"])
	require.Len(t, h["Date"], 1)
	date, err := mail.ParseDate(h["Date"][0])
	require.NoError(t, err)
	require.WithinDuration(t, before, date, time.Minute)
	require.Contains(t, raw, "Subject: =?utf-8?q?", "non-ASCII subjects are Q-encoded")
	head, text, _ := strings.Cut(raw, "\r\n\r\n")
	for _, line := range strings.Split(text, "\r\n") {
		require.LessOrEqual(t, len(line), 76, "quoted-printable keeps body lines short: %q", line)
	}
	for _, w := range regexp.MustCompile(`=\?[^?]+\?[qQ]\?[^?]*\?=`).FindAllString(head, -1) {
		require.LessOrEqual(t, len(w), 75, "RFC 2047 bounds each encoded-word: %q", w)
	}
	require.Regexp(t, `\r\nSubject: =\?utf-8\?q\?[^\r]+\?=\r\n =\?utf-8\?q\?`, raw, "a long subject is folded between encoded-words")
}

// The private Mailpit requires STARTTLS and AUTH, with a self-signed
// certificate made by the test. Each case is one classified outcome.
func TestIntegrationTLSAndAuth(t *testing.T) {
	mp := privateMailpit(t, true, true)
	good := Config{Addr: mp.SMTP, StartTLS: true, CAFile: mp.CA, Username: testUser, Password: testPassword}

	t.Run("send succeeds with the CA (PLAIN)", func(t *testing.T) {
		mid, err := newSender(t, good).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "plain " + tag(t), Body: "hi"})
		require.NoError(t, err)
		m, _, _ := mp.waitOne(t, mid)
		require.Equal(t, "grace.hopper@joinery.test", m.To[0].Address)
	})
	t.Run("send succeeds with LOGIN", func(t *testing.T) {
		s := newSender(t, good)
		s.mechanisms = []string{"LOGIN"}
		mid, err := s.Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "login " + tag(t), Body: "hi"})
		require.NoError(t, err)
		mp.waitOne(t, mid)
	})
	t.Run("opportunistic STARTTLS when not required, still verified", func(t *testing.T) {
		c := good
		c.StartTLS = false
		mid, err := newSender(t, c).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "opportunistic " + tag(t), Body: "hi"})
		require.NoError(t, err)
		mp.waitOne(t, mid)

		c.CAFile = ""
		_, err = newSender(t, c).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeTLS, false)
	})
	t.Run("untrusted certificate is permanent", func(t *testing.T) {
		c := good
		c.CAFile = ""
		_, err := newSender(t, c).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeTLS, false)
		require.Contains(t, err.Error(), "unknown authority")
	})
	t.Run("certificate for another name is permanent", func(t *testing.T) {
		// The certificate names 127.0.0.1 only; "localhost" reaches the
		// same server under a name the certificate does not carry.
		_, port, _ := net.SplitHostPort(mp.SMTP)
		c := good
		c.Addr = net.JoinHostPort("localhost", port)
		_, err := newSender(t, c).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeTLS, false)
		require.Contains(t, err.Error(), "not valid for the server's name")
	})
	t.Run("wrong password is permanent", func(t *testing.T) {
		c := good
		c.Password = "not-the-password"
		_, err := newSender(t, c).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeAuthFailed, false)
		require.NotContains(t, err.Error(), "not-the-password")
	})
	t.Run("no AUTH where the server requires it is a permanent rejection", func(t *testing.T) {
		c := good
		c.Username, c.Password = "", ""
		_, err := newSender(t, c).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeRejected, false)
	})
	t.Run("4xx to MAIL FROM is retryable", func(t *testing.T) {
		mp.chaos(t, "Sender", 451)
		t.Cleanup(func() { mp.chaos(t, "Sender", 0) })
		_, err := newSender(t, good).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeTemporaryFailure, true)
	})
	t.Run("5xx to RCPT TO is permanent", func(t *testing.T) {
		mp.chaos(t, "Recipient", 550)
		t.Cleanup(func() { mp.chaos(t, "Recipient", 0) })
		_, err := newSender(t, good).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeRejected, false)
		require.Contains(t, err.Error(), "550")
	})
	t.Run("4xx to AUTH is retryable", func(t *testing.T) {
		mp.chaos(t, "Authentication", 454)
		t.Cleanup(func() { mp.chaos(t, "Authentication", 0) })
		_, err := newSender(t, good).Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "x", Body: "hi"})
		requireType(t, err, TypeTemporaryFailure, true)
	})
}

// STARTTLS required, server without TLS that offers AUTH in clear: the
// client says EHLO and QUIT and nothing else — no AUTH, no credentials, no
// addresses, no content.
//
// Without STARTTLS required, credentials still never go in clear to a host
// that is not loopback.
func TestIntegrationRequiredSTARTTLSNotOffered(t *testing.T) {
	mp := privateMailpit(t, false, true)
	for _, tc := range []struct {
		name     string
		host     string
		startTLS bool
	}{
		{"STARTTLS required", "127.0.0.1", true},
		{"AUTH in clear to a remote host", externalIP(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := recordOn(t, tc.host, mp.SMTP)
			s := newSender(t, Config{Addr: rec.Addr, StartTLS: tc.startTLS, Username: testUser, Password: testPassword})
			_, err := s.Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "must not leave", Body: "private"})
			requireType(t, err, TypeInsecureTransport, false)

			sent, conns := rec.Sent()
			require.Equal(t, 1, conns)
			require.Regexp(t, `^EHLO \S+\r\nQUIT\r\n$`, sent, "only EHLO and QUIT went over the wire")
			require.Zero(t, mp.total(t))
		})
	}
	t.Run("AUTH in clear to loopback is allowed (the dev stack)", func(t *testing.T) {
		mid, err := newSender(t, Config{Addr: mp.SMTP, Username: testUser, Password: testPassword}).
			Send(ctxT(t), Message{To: "grace.hopper@joinery.test", Subject: "loopback " + tag(t), Body: "hi"})
		require.NoError(t, err)
		mp.waitOne(t, mid)
	})
}

// A server that is not there, or does not answer, is a retryable outage.
func TestIntegrationServerDownAndSilent(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		_, err := newSender(t, Config{Addr: addr}).Send(ctxT(t), Message{To: "a@joinery.test", Subject: "x", Body: "y"})
		requireType(t, err, TypeUnavailable, true)
	})
	t.Run("a stopped Mailpit", func(t *testing.T) {
		mp := privateMailpit(t, false, false)
		s := newSender(t, Config{Addr: mp.SMTP})
		_, err := s.Send(ctxT(t), Message{To: "a@joinery.test", Subject: "before " + tag(t), Body: "y"})
		require.NoError(t, err)
		mp.Stop()
		_, err = s.Send(ctxT(t), Message{To: "a@joinery.test", Subject: "after", Body: "y"})
		requireType(t, err, TypeUnavailable, true)
	})
	t.Run("no greeting within the deadline", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { _ = c.Close() }) // accept, then say nothing
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = newSender(t, Config{Addr: l.Addr().String()}).Send(ctx, Message{To: "a@joinery.test", Subject: "x", Body: "y"})
		requireType(t, err, TypeUnavailable, true)
		require.Less(t, time.Since(start), 3*time.Second, "the context's deadline bounds the conversation")
	})
}

// Adversary: recipients and subjects carrying CR/LF (or other ways to add
// an address) are refused before connecting; a body that tries to end DATA
// and smuggle a second message arrives as text of the one message.
func TestIntegrationHeaderInjection(t *testing.T) {
	mp := privateMailpit(t, false, false)
	rec := record(t, mp.SMTP)
	s := newSender(t, Config{Addr: rec.Addr})

	badTo := []string{
		"victim@joinery.test\r\nBcc: evil@evil.test",
		"victim@joinery.test\nBcc: evil@evil.test",
		"victim@joinery.test\rRCPT TO:<evil@evil.test>",
		"victim@joinery.test>\r\nRCPT TO:<evil@evil.test",
		"victim@joinery.test, evil@evil.test",
		"victim@joinery.test;evil@evil.test",
		"Victim <victim@joinery.test>",
		"<victim@joinery.test>",
		"victim@joinery.test (evil@evil.test)",
		"victim@joinery.test\x00evil@evil.test",
		"",
	}
	for _, to := range badTo {
		_, err := s.Send(ctxT(t), Message{To: to, Subject: "x", Body: "y"})
		requireType(t, err, TypeInvalidInput, false)
	}
	badSubject := []string{
		"hello\r\nBcc: evil@evil.test",
		"hello\nBcc: evil@evil.test",
		"hello\rX-Injected: 1",
		"hello\u0085X-Injected: 1",
		"=?utf-8?q?looks_like_something_else?=",
		"",
	}
	for _, subj := range badSubject {
		_, err := s.Send(ctxT(t), Message{To: "victim@joinery.test", Subject: subj, Body: "y"})
		requireType(t, err, TypeInvalidInput, false)
	}
	_, conns := rec.Sent()
	require.Zero(t, conns, "refused input never opened a connection")

	smuggle := "first line\r\n.\r\nMAIL FROM:<evil@evil.test>\r\nRCPT TO:<evil@evil.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n" +
		"\n.\nMAIL FROM:<evil@evil.test>\n" + "bare\rcarriage\n"
	mid, err := s.Send(ctxT(t), Message{To: "victim@joinery.test", Subject: "smuggling " + tag(t), Body: smuggle})
	require.NoError(t, err)
	m, h, _ := mp.waitOne(t, mid)
	require.Len(t, m.To, 1)
	require.Equal(t, "victim@joinery.test", m.To[0].Address)
	require.Empty(t, m.Bcc)
	require.Empty(t, m.Cc)
	require.NotContains(t, h, "X-Injected")
	require.Contains(t, m.Text, "MAIL FROM:<evil@evil.test>", "the smuggled commands are text of the message")
	require.Contains(t, m.Text, "Subject: smuggled")
	require.Equal(t, 1, mp.total(t), "no second message was smuggled in")
	sent, _ := rec.Sent()
	commands, data, ok := strings.Cut(sent, "\r\nDATA\r\n")
	require.True(t, ok)
	require.Equal(t, 1, strings.Count(commands, "RCPT TO:"), "one recipient on the wire")
	require.Equal(t, 1, strings.Count(data, "\r\n.\r\n"), "DATA ended once, at its end: %q", data)
	require.True(t, strings.HasSuffix(data, "\r\n.\r\nQUIT\r\n"))
}
