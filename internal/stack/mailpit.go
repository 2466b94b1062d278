package stack

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Mailpit --------------------------------------------------------------------

// MailpitOptions make a Mailpit demand what a production relay would: TLS
// and authentication. The dev stack's own instance runs without them (plain
// SMTP on loopback, any sender accepted); tests of the mail connector start a
// private instance with them through PrivateMailpit.
type MailpitOptions struct {
	// TLSCert and TLSKey (PEM files) make the server offer STARTTLS.
	TLSCert, TLSKey string
	// RequireSTARTTLS refuses MAIL and AUTH before STARTTLS.
	RequireSTARTTLS bool
	// AuthFile is an htpasswd-style file ("user:password" lines); when set
	// the server requires AUTH with one of its users.
	AuthFile string
	// AllowInsecureAuth lets the server offer AUTH without TLS, so a test
	// can prove the client still refuses to send credentials in clear.
	AllowInsecureAuth bool
	// Chaos enables Mailpit's fault injection API (PUT /api/v1/chaos), which
	// makes the server answer chosen SMTP error codes.
	Chaos bool
}

func (c Config) mailpitServer() server {
	dir := c.dataDir("mailpit")
	smtpAddr, apiURL := c.mailpitAddrs()
	return server{
		name: "mailpit",
		prepare: func(ctx context.Context) error {
			return os.MkdirAll(dir, 0o700)
		},
		command: func() (string, []string, []string, error) {
			args := []string{
				"--smtp", smtpAddr,
				"--listen", strings.TrimPrefix(apiURL, "http://"),
				"--database", filepath.Join(dir, "mailpit.db"),
				// No network beyond loopback: no update check on GitHub and
				// no reverse DNS of the (always local) client.
				"--disable-version-check",
				"--smtp-disable-rdns",
				// Bound the store: tests and demos send mail all day.
				"--max", "2000",
			}
			if o := c.Mailpit; o != nil {
				if o.TLSCert != "" {
					args = append(args, "--smtp-tls-cert", o.TLSCert, "--smtp-tls-key", o.TLSKey)
				}
				if o.RequireSTARTTLS {
					args = append(args, "--smtp-require-starttls")
				}
				if o.AuthFile != "" {
					args = append(args, "--smtp-auth-file", o.AuthFile)
				}
				if o.AllowInsecureAuth {
					args = append(args, "--smtp-auth-allow-insecure")
				}
				if o.Chaos {
					args = append(args, "--enable-chaos")
				}
			} else {
				// The shared dev instance takes any sender without AUTH:
				// loopback only, and holding nothing but test mail.
				args = append(args, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
			}
			return c.bin("mailpit"), args, nil, nil
		},
		ready: func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("mailpit readyz: %s", resp.Status)
			}
			// The HTTP side answers before the SMTP listener may; a
			// greeting proves the half Joinery talks to is up as well.
			return smtpGreeting(ctx, smtpAddr)
		},
	}
}

// smtpGreeting dials addr and reads the server's 220 greeting, then quits.
func smtpGreeting(ctx context.Context, addr string) error {
	conn, err := dialer(ctx).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(3 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("smtp greeting: %q", strings.TrimSpace(line))
	}
	_, _ = conn.Write([]byte("QUIT\r\n"))
	return nil
}

// PrivateMailpit starts a Mailpit of its own under c.StateDir on
// c.MailpitSMTPPort and c.MailpitHTTPPort, configured by c.Mailpit, for
// tests that must not touch (or reconfigure) the shared one. stop ends
// exactly that process, by the PID it recorded.
func PrivateMailpit(ctx context.Context, c Config) (stop func(), err error) {
	s := c.mailpitServer()
	if err := c.ensure(ctx, s); err != nil {
		return nil, fmt.Errorf("private mailpit: %w (log: %s)", err, c.logFile(s.name))
	}
	return func() { _ = c.stop(context.Background(), s.name) }, nil
}

// mailpitAddrs are where c's Mailpit answers: SMTP host:port and the HTTP
// API's base URL.
func (c Config) mailpitAddrs() (smtp, api string) {
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(c.MailpitSMTPPort)),
		"http://" + net.JoinHostPort("127.0.0.1", fmt.Sprint(c.MailpitHTTPPort))
}
