package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// Credentials of the private Mailpits (test-only).
const (
	testUser     = "joinery-notifier"
	testPassword = "pw-never-in-errors-7f3a"
)

// mailpit is one running Mailpit: where to send and where to read back.
type mailpit struct {
	SMTP string
	API  string
	// CA is the PEM file that verifies its STARTTLS certificate ("" when it
	// serves no TLS).
	CA string
	// Stop ends a private Mailpit early (it also ends with the test).
	Stop func()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tag(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// selfSigned writes a fresh self-signed certificate for 127.0.0.1 (its own
// CA) and its key, and returns the file names.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "joinery test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	cert, key = filepath.Join(dir, "smtp-cert.pem"), filepath.Join(dir, "smtp-key.pem")
	require.NoError(t, os.WriteFile(cert, pemBlock("CERTIFICATE", der), 0o600))
	require.NoError(t, os.WriteFile(key, pemBlock("PRIVATE KEY", kd), 0o600))
	return cert, key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// privateMailpit starts a Mailpit of the test's own on free ports (state
// in a temp dir), stopped by its PID when the test ends. withTLS gives it a
// self-signed certificate and requires STARTTLS; withAuth requires AUTH as
// testUser/testPassword (with insecure AUTH allowed when there is no TLS,
// so the client's own refusal is what is tested).
func privateMailpit(t *testing.T, withTLS, withAuth bool) mailpit {
	t.Helper()
	cfg := stacktest.Config(t)
	cfg.StateDir = t.TempDir()
	cfg.MailpitSMTPPort, cfg.MailpitHTTPPort = freePort(t), freePort(t)
	cfg.StartTimeout = 60 * time.Second
	opts := &stack.MailpitOptions{Chaos: true}
	mp := mailpit{}
	if withTLS {
		opts.TLSCert, opts.TLSKey = selfSigned(t, cfg.StateDir)
		opts.RequireSTARTTLS = true
		mp.CA = opts.TLSCert
	}
	if withAuth {
		opts.AuthFile = filepath.Join(cfg.StateDir, "smtp-users")
		require.NoError(t, os.WriteFile(opts.AuthFile, []byte(testUser+":"+testPassword+"\n"), 0o600))
		// Mailpit itself refuses to start with insecure AUTH and required
		// STARTTLS together.
		opts.AllowInsecureAuth = !withTLS
	}
	cfg.Mailpit = opts
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stop, err := stack.PrivateMailpit(ctx, cfg)
	require.NoError(t, err, "a private Mailpit is needed (bin/mailpit: `scripts/tools.sh mailpit`)")
	t.Cleanup(stop)
	ep := cfg.Endpoints()
	mp.SMTP, mp.API, mp.Stop = ep.SMTPAddr, ep.MailpitAPIURL, stop
	return mp
}

// stackMailpit is the shared dev stack's Mailpit.
func stackMailpit(t *testing.T) mailpit {
	t.Helper()
	ep := stacktest.Ensure(t)
	return mailpit{SMTP: ep.SMTPAddr, API: ep.MailpitAPIURL}
}

// Mailpit API shapes (the fields the tests read).
type apiAddress struct {
	Name    string
	Address string
}

type apiSummary struct {
	ID        string
	MessageID string
	Subject   string
	To        []apiAddress
}

type apiMessage struct {
	ID        string
	MessageID string
	From      apiAddress
	To        []apiAddress
	Cc        []apiAddress
	Bcc       []apiAddress
	Subject   string
	Text      string
}

func apiGet(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, body)
	if out != nil {
		require.NoError(t, json.Unmarshal(body, out), "GET %s", u)
	}
}

// messagesByID returns the stored messages whose Message-ID is id. The
// Message-ID is unique per Send, so a test finds its own mail in a shared
// Mailpit that other tests and the demo write to as well.
func (mp mailpit) messagesByID(t *testing.T, id string) []apiSummary {
	t.Helper()
	var res struct{ Messages []apiSummary }
	q := url.QueryEscape("message-id:" + strings.Trim(id, "<>"))
	apiGet(t, mp.API+"/api/v1/search?limit=50&query="+q, &res)
	var out []apiSummary
	for _, m := range res.Messages {
		if m.MessageID == strings.Trim(id, "<>") {
			out = append(out, m)
		}
	}
	return out
}

// waitOne waits for exactly one stored message with Message-ID id and
// returns it in full, with its headers and raw source. Only the test's own
// message is deleted afterwards: the dev stack's Mailpit is shared.
func (mp mailpit) waitOne(t *testing.T, id string) (apiMessage, map[string][]string, string) {
	t.Helper()
	var found []apiSummary
	require.Eventually(t, func() bool {
		found = mp.messagesByID(t, id)
		return len(found) > 0
	}, 10*time.Second, 100*time.Millisecond, "message %s never reached Mailpit", id)
	require.Len(t, found, 1, "exactly one message with Message-ID %s", id)
	var m apiMessage
	apiGet(t, mp.API+"/api/v1/message/"+found[0].ID, &m)
	var h map[string][]string
	apiGet(t, mp.API+"/api/v1/message/"+found[0].ID+"/headers", &h)
	resp, err := http.Get(mp.API + "/api/v1/message/" + found[0].ID + "/raw")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Cleanup(func() { mp.deleteIDs(found[0].ID) })
	return m, h, string(raw)
}

// total is how many messages the Mailpit holds.
func (mp mailpit) total(t *testing.T) int {
	t.Helper()
	var res struct{ Total int }
	apiGet(t, mp.API+"/api/v1/messages?limit=1", &res)
	return res.Total
}

func (mp mailpit) deleteIDs(ids ...string) {
	body, _ := json.Marshal(map[string][]string{"IDs": ids})
	req, _ := http.NewRequest(http.MethodDelete, mp.API+"/api/v1/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// chaos makes the private Mailpit answer code to every MAIL FROM (sender)
// or RCPT TO (recipient); code 0 turns it off again.
func (mp mailpit) chaos(t *testing.T, trigger string, code int) {
	t.Helper()
	prob := 100
	if code == 0 {
		code, prob = 451, 0
	}
	body, _ := json.Marshal(map[string]any{trigger: map[string]int{"ErrorCode": code, "Probability": prob}})
	req, _ := http.NewRequest(http.MethodPut, mp.API+"/api/v1/chaos", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "chaos: %s", msg)
}

// recorder is a TCP proxy in front of a real server that keeps every byte
// the client sent, to prove what did (not) go over the wire.
type recorder struct {
	Addr  string
	mu    sync.Mutex
	sent  bytes.Buffer
	conns int
}

func record(t *testing.T, upstream string) *recorder {
	t.Helper()
	return recordOn(t, "127.0.0.1", upstream)
}

// recordOn is record listening on host.
func recordOn(t *testing.T, host, upstream string) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	r := &recorder{Addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			go r.pipe(c, upstream)
		}
	}()
	return r
}

func (r *recorder) pipe(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.sent.Write(buf[:n])
			r.mu.Unlock()
			if _, werr := u.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Sent is what clients sent so far, and over how many connections.
func (r *recorder) Sent() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent.String(), r.conns
}

// externalIP is an address of this machine that is not loopback: the
// client must treat it as a remote host.
func externalIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	t.Fatalf("this test needs a non-loopback IPv4 address on the machine; interfaces have %v", addrs)
	return ""
}

// requireType asserts err is a *connectors.Error of type typ with the
// expected retryability, and that no secret leaked into its text.
func requireType(t *testing.T, err error, typ string, retryable bool) {
	t.Helper()
	require.Error(t, err)
	var ce *connectors.Error
	require.True(t, errors.As(err, &ce), "want *connectors.Error, got %T: %v", err, err)
	require.Equal(t, typ, ce.Type, "%v", err)
	require.Equal(t, retryable, ce.Retryable, "retryable for %v", err)
	require.Equal(t, retryable, connectors.IsRetryable(err))
	require.NotContains(t, fmt.Sprintf("%v %+v", err, err), testPassword, "the password must never be in an error")
}
