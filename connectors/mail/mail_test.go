package mail

import (
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckAddress(t *testing.T) {
	for _, ok := range []string{"ada.lovelace@joinery.test", "a+tag@example.com", "x@y"} {
		require.NoError(t, CheckAddress(ok), ok)
	}
	for _, bad := range []string{
		"", "ada", "@joinery.test", "ada@", "a@b@c", "Ada <ada@joinery.test>", "<ada@joinery.test>",
		"ada@joinery.test\r\nBcc: x@y", "ada@joinery.test,x@y", "ada @joinery.test", "zoë@joinery.test",
		`"a b"@joinery.test`, "ada@joinery.test (comment)", strings.Repeat("a", 250) + "@b.test",
	} {
		require.Error(t, CheckAddress(bad), "%q", bad)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no port":               {Addr: "127.0.0.1", From: "j@joinery.test"},
		"bad sender":            {Addr: "127.0.0.1:25", From: "Joinery <j@joinery.test>"},
		"password without user": {Addr: "127.0.0.1:25", From: "j@joinery.test", Password: "x"},
		"missing CA file":       {Addr: "127.0.0.1:25", From: "j@joinery.test", CAFile: "/nonexistent/ca.pem"},
		"CRLF in username":      {Addr: "127.0.0.1:25", From: "j@joinery.test", Username: "u\r\nMAIL FROM:<x@y>"},
	} {
		_, err := New(cfg)
		require.Error(t, err, name)
	}
}

func TestComposeHeadersAndBody(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:25", From: "joinery@joinery.test"})
	require.NoError(t, err)
	s.now = func() time.Time { return time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC) }
	msg, id, err := s.compose(Message{To: "ada@joinery.test", Subject: "Grüße", Body: "a\nb\r\nc\rd = é"})
	require.NoError(t, err)
	head, body, ok := strings.Cut(string(msg), "\r\n\r\n")
	require.True(t, ok)
	require.Equal(t, []string{
		"From: joinery@joinery.test",
		"To: ada@joinery.test",
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
		"Date: Tue, 01 Dec 2026 09:30:00 +0000",
		"Message-ID: " + id,
		"MIME-Version: 1.0",
		`Content-Type: text/plain; charset="utf-8"`,
		"Content-Transfer-Encoding: quoted-printable",
		"Auto-Submitted: auto-generated",
	}, strings.Split(head, "\r\n"))
	require.Equal(t, "a\r\nb\r\nc\r\nd =3D =C3=A9", body, "every line break becomes CRLF; = and non-ASCII are encoded")
}

func TestEncodeSubject(t *testing.T) {
	got, err := encodeSubject("Approval needed")
	require.NoError(t, err)
	require.Equal(t, "Approval needed", got, "ASCII stays readable")

	got, err = encodeSubject(strings.Repeat("é", 60))
	require.NoError(t, err)
	for _, line := range strings.Split(got, "\r\n") {
		require.LessOrEqual(t, len(strings.TrimSpace(line)), 75)
	}
	require.Contains(t, got, "?=\r\n =?utf-8?q?", "folded between encoded-words")

	for _, bad := range []string{"", " ", "a\r\nb", "a\nb", "a\rb", "a\x00b", "a\tb", "a\u0085b", "a\u2028b",
		"=?utf-8?q?x?=", strings.Repeat("x", 251), "bad \xff utf8"} {
		_, err := encodeSubject(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestLoginAuth(t *testing.T) {
	a := &loginAuth{user: "u", pass: "p", host: "smtp.example.com"}
	_, _, err := a.Start(&smtp.ServerInfo{Name: "smtp.example.com", TLS: false})
	require.Error(t, err, "no LOGIN in clear to a remote host")
	_, _, err = a.Start(&smtp.ServerInfo{Name: "other.example.com", TLS: true})
	require.Error(t, err, "no LOGIN to another host")
	mech, ir, err := a.Start(&smtp.ServerInfo{Name: "smtp.example.com", TLS: true})
	require.NoError(t, err)
	require.Equal(t, "LOGIN", mech)
	require.Nil(t, ir)
	user, err := a.Next([]byte("Username:"), true)
	require.NoError(t, err)
	require.Equal(t, "u", string(user))
	pass, err := a.Next([]byte("Password:"), true)
	require.NoError(t, err)
	require.Equal(t, "p", string(pass))
	_, err = a.Next([]byte("Something else:"), true)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "p\"")

	_, _, err = (&loginAuth{user: "u", pass: "p", host: "127.0.0.1"}).Start(&smtp.ServerInfo{Name: "127.0.0.1"})
	require.NoError(t, err, "loopback (the dev stack's Mailpit) may take LOGIN in clear")
}

// A keyed message has a Message-ID that depends on the key alone: the
// retried send of one notification repeats it, another notification (or
// another sender domain's) does not, and the key itself never appears.
func TestKeyedMessageIDIsStable(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:25", From: "joinery@joinery.test"})
	require.NoError(t, err)
	m := Message{To: "ada@joinery.test", Subject: "s", Body: "b", Key: "joiner-300\x00run-1\x00reminder\x005"}
	_, id1, err := s.compose(m)
	require.NoError(t, err)
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	raw, id2, err := s.compose(m)
	require.NoError(t, err)
	require.Equal(t, id1, id2, "same key, same Message-ID, whatever the time")
	require.Regexp(t, `^<joinery\.[0-9a-f]{32}@joinery\.test>$`, id1)
	require.NotContains(t, string(raw), "joiner-300", "the key is hashed, not sent")

	other := m
	other.Key = "joiner-300\x00run-1\x00reminder\x006"
	_, id3, err := s.compose(other)
	require.NoError(t, err)
	require.NotEqual(t, id1, id3)

	unkeyed := m
	unkeyed.Key = ""
	_, r1, err := s.compose(unkeyed)
	require.NoError(t, err)
	_, r2, err := s.compose(unkeyed)
	require.NoError(t, err)
	require.NotEqual(t, r1, r2, "without a key every message is new")
}
