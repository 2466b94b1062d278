// Package mail is Joinery's SMTP connector: it sends one plain-text,
// UTF-8 e-mail at a time to a relay (the dev stack's Mailpit, or the
// organisation's submission server).
//
// It is built on the standard library's net/smtp rather than on a client of
// its own over net/textproto: net/smtp already does the parts that are easy
// to get subtly wrong (reply parsing with multi-line continuations, dot
// stuffing of DATA, re-EHLO after STARTTLS, CR/LF checks on every command
// line) and receives the Go team's security fixes. What it leaves to the
// caller is what this package adds: STARTTLS as a hard requirement, a
// context-driven deadline, the LOGIN mechanism, strict header construction
// and error classification.
//
// Every failure is a *connectors.Error with one of the Type values below, so
// activities can turn it into a Temporal retry decision without knowing SMTP.
// The password never appears in an error or a log line.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/joinery/joinery/connectors"
)

// System is the connectors.Error System value of every error of this package.
const System = "smtp"

// Error types (connectors.Error.Type) returned by Send. They are stable
// names: activities and Temporal retry policies match on them.
const (
	// TypeUnavailable: the server could not be reached, hung up or did not
	// answer in time. Retryable.
	TypeUnavailable = "MailUnavailable"
	// TypeTemporaryFailure: the server answered 4xx (greylisting, mailbox
	// busy, rate limit). Retryable.
	TypeTemporaryFailure = "MailTemporaryFailure"
	// TypeRejected: the server answered 5xx to the sender, a recipient or
	// the message. Permanent.
	TypeRejected = "MailRejected"
	// TypeAuthFailed: the server refused the credentials (5xx to AUTH).
	// Permanent: retrying a wrong password only locks the account.
	TypeAuthFailed = "MailAuthFailed"
	// TypeAuthUnsupported: a username is configured but the server offers
	// neither PLAIN nor LOGIN. Permanent.
	TypeAuthUnsupported = "MailAuthUnsupported"
	// TypeTLS: the server's certificate could not be verified, or the TLS
	// handshake was refused. Permanent: retrying cannot make it trusted.
	TypeTLS = "MailTLSError"
	// TypeInsecureTransport: STARTTLS is required but the server does not
	// offer it, or credentials would have to travel in clear to a host that
	// is not loopback. Nothing was sent. Permanent.
	TypeInsecureTransport = "MailInsecureTransport"
	// TypeInvalidInput: an address, subject or body the client refuses to
	// send (CR/LF or other control characters, not a bare address, too
	// long). Nothing was sent. Permanent.
	TypeInvalidInput = "MailInvalidInput"
)

// DefaultTimeout bounds one Send when the caller's context has no deadline.
const DefaultTimeout = 30 * time.Second

// Limits on what Send accepts, well inside SMTP's own (RFC 5321 §4.5.3.1).
const (
	maxSubjectRunes = 250
	maxAddressLen   = 254
	maxBodyBytes    = 1 << 20
)

// Config configures a Sender.
type Config struct {
	// Addr is the server's host:port, e.g. 127.0.0.1:1025 or
	// smtp.example.com:587. The host also names the server for TLS.
	Addr string
	// From is the envelope sender and From header: a bare address.
	From string
	// Username, when set, makes the client authenticate (PLAIN, else LOGIN).
	Username string
	// Password goes with Username. Secret: never logged or put in errors.
	Password string
	// StartTLS requires STARTTLS before anything else is sent. Without it
	// the client still upgrades when the server offers STARTTLS, and still
	// verifies the certificate: an offered but unverifiable TLS is refused
	// rather than silently downgraded.
	StartTLS bool
	// CAFile is a PEM bundle that verifies the server certificate; empty
	// means the system roots.
	CAFile string
	// Timeout bounds one Send when ctx has no deadline (DefaultTimeout).
	Timeout time.Duration
	// LocalName is the name given in EHLO (default: the host name, or
	// "localhost").
	LocalName string
}

// Message is one e-mail to one person.
type Message struct {
	// To is the recipient: a bare address (user@example.com), no display
	// name, no list.
	To string
	// Subject is one line of UTF-8 text; it is Q-encoded when needed.
	Subject string
	// Body is UTF-8 text; it is sent quoted-printable, lines ending CRLF.
	Body string
	// Key, when set, makes the Message-ID a function of it: the same key
	// always gives the same Message-ID, so a send that is retried after the
	// server accepted it (the caller never heard) reaches the mailbox as a
	// duplicate mail clients and archives recognise and fold into one.
	// Callers derive it from what identifies the message (for a joiner's
	// notification: workflow, run, kind and sequence). It is hashed, never
	// sent as is, so it may hold anything but secrets; empty means a fresh
	// random Message-ID.
	Key string
}

// Sender sends messages through one SMTP server. It dials a fresh
// connection per message, so it holds no connection state and is safe for
// concurrent use.
type Sender struct {
	cfg   Config
	host  string
	roots *x509.CertPool
	// mechanisms is the AUTH preference order; tests narrow it to exercise
	// LOGIN against a server that also offers PLAIN.
	mechanisms []string
	now        func() time.Time
}

// New checks cfg and loads its CA file. It does not contact the server.
func New(cfg Config) (*Sender, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("smtp: address %q: want host:port", cfg.Addr)
	}
	if err := CheckAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: sender: %w", err)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, errors.New("smtp: a password is set without a username")
	}
	if strings.ContainsAny(cfg.Username, "\r\n\x00") {
		return nil, errors.New("smtp: the username contains a control character")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("smtp: Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LocalName == "" {
		cfg.LocalName = localName()
	} else if strings.ContainsAny(cfg.LocalName, " \r\n\x00") {
		return nil, errors.New("smtp: LocalName must be one word")
	}
	s := &Sender{cfg: cfg, host: host, mechanisms: []string{"PLAIN", "LOGIN"}, now: time.Now}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp: CA file: %w", err)
		}
		s.roots = x509.NewCertPool()
		if !s.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp: CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return s, nil
}

// Send delivers m and returns the Message-ID it was sent with. It is one
// SMTP transaction: the message was accepted for delivery when err is nil.
// ctx bounds the whole conversation, connect included.
func (s *Sender) Send(ctx context.Context, m Message) (messageID string, err error) {
	// Everything that can be refused is refused before the first byte goes
	// out, so bad input never reaches the server half-sent.
	if err := CheckAddress(m.To); err != nil {
		return "", connectors.Permanent(System, "send", TypeInvalidInput, "recipient refused before sending", err)
	}
	msg, id, err := s.compose(m)
	if err != nil {
		return "", connectors.Permanent(System, "send", TypeInvalidInput, "message refused before sending", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	if err := s.transact(ctx, m.To, msg); err != nil {
		return "", err
	}
	return id, nil
}

// transact runs one SMTP conversation: greeting, EHLO, STARTTLS, AUTH,
// MAIL, RCPT, DATA, QUIT.
func (s *Sender) transact(ctx context.Context, to string, msg []byte) error {
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return classify(ctx, "connect", err)
	}
	defer conn.Close()
	// net/smtp knows no context: the deadline bounds every read and write,
	// and cancellation closes the connection under it.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return classify(ctx, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.LocalName); err != nil {
		return classify(ctx, "ehlo", err)
	}
	secure := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := &tls.Config{ServerName: s.host, RootCAs: s.roots, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(tc); err != nil {
			return classify(ctx, "starttls", err)
		}
		secure = true
	} else if s.cfg.StartTLS {
		// Say goodbye without having sent credentials, addresses or content.
		_ = c.Quit()
		return connectors.Permanent(System, "starttls", TypeInsecureTransport,
			"STARTTLS is required but the server does not offer it; nothing was sent", nil)
	}
	if s.cfg.Username != "" {
		if err := s.auth(ctx, c, secure); err != nil {
			return err
		}
	}
	if err := c.Mail(s.cfg.From); err != nil {
		return classify(ctx, "mail-from", err)
	}
	if err := c.Rcpt(to); err != nil {
		return classify(ctx, "rcpt-to", err)
	}
	w, err := c.Data()
	if err != nil {
		return classify(ctx, "data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify(ctx, "data", err)
	}
	// Close sends the final "." and returns the server's verdict on the
	// message itself.
	if err := w.Close(); err != nil {
		return classify(ctx, "data", err)
	}
	// Accepted: a failed QUIT cannot undo that, and reporting it would make
	// the activity retry and send the message twice.
	_ = c.Quit()
	return nil
}

// auth authenticates with the first mechanism of s.mechanisms the server
// offers. Credentials go only over TLS, or in clear to a loopback server
// (the dev stack's Mailpit), never to another host in clear.
func (s *Sender) auth(ctx context.Context, c *smtp.Client, secure bool) error {
	if !secure && !isLoopback(s.host) {
		_ = c.Quit()
		return connectors.Permanent(System, "auth", TypeInsecureTransport,
			"refusing to send credentials without TLS to a host that is not loopback; set JOINERY_SMTP_STARTTLS", nil)
	}
	ok, offered := c.Extension("AUTH")
	if !ok {
		_ = c.Quit()
		return connectors.Permanent(System, "auth", TypeAuthUnsupported,
			"a username is configured but the server offers no AUTH", nil)
	}
	have := map[string]bool{}
	for _, m := range strings.Fields(strings.ToUpper(offered)) {
		have[m] = true
	}
	var a smtp.Auth
	for _, m := range s.mechanisms {
		if a != nil || !have[m] {
			continue
		}
		switch m {
		case "PLAIN":
			a = smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)
		case "LOGIN":
			a = &loginAuth{user: s.cfg.Username, pass: s.cfg.Password, host: s.host}
		}
	}
	if a == nil {
		_ = c.Quit()
		return connectors.Permanent(System, "auth", TypeAuthUnsupported,
			fmt.Sprintf("the server offers AUTH %s, none of which this client speaks (PLAIN, LOGIN)", strings.TrimSpace(offered)), nil)
	}
	if err := c.Auth(a); err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) && tp.Code >= 500 {
			return connectors.Permanent(System, "auth", TypeAuthFailed,
				fmt.Sprintf("server refused the credentials of %q: %d %s", s.cfg.Username, tp.Code, oneLine(tp.Msg)), nil)
		}
		return classify(ctx, "auth", err)
	}
	return nil
}

// loginAuth is the LOGIN mechanism (draft-murchison-sasl-login), which
// net/smtp lacks and which many submission servers (Exchange among them)
// still offer instead of or besides PLAIN.
type loginAuth struct{ user, pass, host string }

// Start refuses, like smtp.PlainAuth, to go on over an unencrypted
// connection to anything but loopback, or to another host than configured.
func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

// Next answers the server's two prompts.
func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected LOGIN challenge")
}

// compose builds the message: headers this package writes itself (none
// comes from the caller but the checked recipient and subject) and a
// quoted-printable text/plain UTF-8 body.
func (s *Sender) compose(m Message) ([]byte, string, error) {
	subject, err := encodeSubject(m.Subject)
	if err != nil {
		return nil, "", err
	}
	if len(m.Body) > maxBodyBytes {
		return nil, "", fmt.Errorf("body is larger than %d bytes", maxBodyBytes)
	}
	if strings.ContainsRune(m.Body, 0) {
		return nil, "", errors.New("body contains NUL")
	}
	id, err := s.messageID(m.Key)
	if err != nil {
		return nil, "", err
	}
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", s.cfg.From)
	h("To", m.To)
	h("Subject", subject)
	h("Date", s.now().Format(time.RFC1123Z))
	h("Message-ID", id)
	h("MIME-Version", "1.0")
	h("Content-Type", `text/plain; charset="utf-8"`)
	h("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: tells vacation responders and ticket systems not to answer
	// a notification, so an auto-reply can never loop back into Joinery.
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")

	body := strings.ToValidUTF8(m.Body, "\uFFFD")
	// One line-break convention in, CRLF out: the quoted-printable writer
	// turns each "\n" into a hard CRLF break, and a lone CR would otherwise
	// become an encoded =0D in the middle of a line.
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, "", err
	}
	if err := qp.Close(); err != nil {
		return nil, "", err
	}
	// No trailing CRLF of our own: DATA's dot-writer ends an unterminated
	// last line itself, and an extra one would add a blank line.
	return b.Bytes(), id, nil
}

// messageID is the message's <id-left@sender-domain> identifier (RFC 5322
// §3.6.4). With a key it is derived from the key alone (a SHA-256 under a
// label of this package's own, truncated to 128 bits), so it is stable
// across retries and carries nothing of the key but a digest; without one
// it is random plus the time, unique per message.
func (s *Sender) messageID(key string) (string, error) {
	domain := s.cfg.From[strings.LastIndexByte(s.cfg.From, '@')+1:]
	if key != "" {
		sum := sha256.Sum256([]byte("joinery-message-id\x00" + key))
		return "<joinery." + hex.EncodeToString(sum[:16]) + "@" + domain + ">", nil
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return "<" + hex.EncodeToString(r[:]) + "." + fmt.Sprint(s.now().Unix()) + "@" + domain + ">", nil
}

// encodeSubject refuses what could end the header (CR, LF and every other
// control character) and Q-encodes the rest when it is not plain ASCII.
func encodeSubject(subject string) (string, error) {
	if strings.TrimSpace(subject) == "" {
		return "", errors.New("empty subject")
	}
	if !utf8.ValidString(subject) {
		return "", errors.New("subject is not valid UTF-8")
	}
	if utf8.RuneCountInString(subject) > maxSubjectRunes {
		return "", fmt.Errorf("subject is longer than %d characters", maxSubjectRunes)
	}
	for _, r := range subject {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "", errors.New("subject contains a control character (CR, LF, ...)")
		}
	}
	enc := mime.QEncoding.Encode("utf-8", subject)
	if enc == subject && strings.Contains(subject, "=?") {
		// Left unencoded, this would read as an encoded-word to the mail
		// client and could display other text than was checked.
		return "", errors.New(`subject contains "=?"`)
	}
	// The encoder separates encoded-words with a space; folding there keeps
	// each header line short (RFC 2047 §2: whitespace between encoded-words
	// is not displayed).
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?"), nil
}

// CheckAddress accepts only a bare ASCII addr-spec: no display name, no
// angle brackets, no comments, no list, no whitespace or control character.
// Anything else could add a recipient or a header. Send applies it to every
// address; callers use it to vet addresses from elsewhere (the directory).
func CheckAddress(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if len(a) > maxAddressLen {
		return errors.New("address too long")
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`<>,;:()[]\"`, c) >= 0 {
			return fmt.Errorf("address contains %q", c)
		}
	}
	p, err := mail.ParseAddress(a)
	if err != nil {
		return fmt.Errorf("not an address: %w", err)
	}
	if p.Name != "" || p.Address != a || strings.Count(a, "@") != 1 || strings.HasPrefix(a, "@") || strings.HasSuffix(a, "@") {
		return errors.New("want a bare address such as user@example.com")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func localName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \r\n\x00") {
		return "localhost"
	}
	return h
}
