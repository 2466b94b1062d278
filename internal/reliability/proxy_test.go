package reliability

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

// The proxy's own mechanics, against small servers of the test's own (the
// suite proper runs it in front of the real slapd, Vault and HRIS).

func httpBackend(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var writes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			writes.Add(1)
		}
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write([]byte("ok:" + r.URL.Path + ":" + string(body)))
	}))
	t.Cleanup(srv.Close)
	return srv, &writes
}

func TestProxyHTTPPassThroughKeepAlive(t *testing.T) {
	srv, _ := httpBackend(t)
	p, err := NewProxy("t", HTTP, strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer p.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 3; i++ { // one keep-alive connection, several requests
		resp, err := c.Post("http://"+p.Addr()+"/a", "text/plain", strings.NewReader("x"))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, "ok:/a:x", string(b))
	}
	st := p.Stats()
	require.Equal(t, 3, st.Requests)
	require.Equal(t, 1, st.Conns, "the client's keep-alive connection is relayed as one")
	require.Zero(t, st.InFlight)
}

// The write reaches the server, the action runs, and the client never
// sees the answer: exactly the crash the suite needs.
func TestProxyHTTPCrashAfterWrite(t *testing.T) {
	srv, writes := httpBackend(t)
	p, err := NewProxy("t", HTTP, strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer p.Close()
	var acted atomic.Int32
	tr := p.Arm("w", func(r Request) bool { return r.Op == http.MethodPost && r.Target == "/write" }, func() {
		require.EqualValues(t, 1, writes.Load(), "the action runs after the server applied the write")
		acted.Add(1)
	})
	c := &http.Client{Timeout: 5 * time.Second}
	_, err = c.Get("http://" + p.Addr() + "/read")
	require.NoError(t, err, "a request the trigger does not match passes")
	_, err = c.Post("http://"+p.Addr()+"/write", "text/plain", strings.NewReader("v"))
	require.Error(t, err, "the client never learns the write happened")
	<-tr.Fired()
	require.EqualValues(t, 1, writes.Load())
	require.EqualValues(t, 1, acted.Load())
	require.Equal(t, "/write", tr.Request.Target)
	// One-shot: the next write goes through.
	resp, err := c.Post("http://"+p.Addr()+"/write", "text/plain", strings.NewReader("v"))
	require.NoError(t, err)
	resp.Body.Close()
	require.EqualValues(t, 2, writes.Load())
	require.EqualValues(t, 1, acted.Load())
}

func TestProxyLatencyAndOutage(t *testing.T) {
	srv, writes := httpBackend(t)
	p, err := NewProxy("t", HTTP, strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer p.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	p.SetLatency(200 * time.Millisecond)
	start := time.Now()
	resp, err := c.Get("http://" + p.Addr() + "/slow")
	require.NoError(t, err)
	resp.Body.Close()
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	p.SetLatency(0)

	p.SetDown(true)
	_, err = c.Post("http://"+p.Addr()+"/write", "text/plain", strings.NewReader("v"))
	require.Error(t, err, "an outage refuses connections")
	require.Zero(t, writes.Load(), "and nothing reaches the server")
	require.Positive(t, p.Stats().Refused)
	p.SetDown(false)
	resp, err = c.Post("http://"+p.Addr()+"/write", "text/plain", strings.NewReader("v"))
	require.NoError(t, err)
	resp.Body.Close()
	require.EqualValues(t, 1, writes.Load())
}

// fakeLDAP answers every add with success (resultCode 0) and records the
// DNs it applied, so the test sees that the add happened.
func fakeLDAP(t *testing.T) (string, chan string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	added := make(chan string, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					raw, err := readBER(br)
					if err != nil {
						return
					}
					id, req := parseLDAP(raw)
					if req.Op != "add" {
						continue
					}
					added <- req.Target
					resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
					resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
					op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 9, nil, "AddResponse")
					op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
					op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
					op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnostic"))
					resp.AppendChild(op)
					_, _ = c.Write(resp.Bytes())
				}
			}(c)
		}
	}()
	return l.Addr().String(), added
}

func TestProxyLDAPCrashAfterAdd(t *testing.T) {
	addr, added := fakeLDAP(t)
	p, err := NewProxy("ldap", LDAP, addr)
	require.NoError(t, err)
	defer p.Close()
	tr := p.Arm("add", func(r Request) bool { return r.Op == "add" && strings.Contains(r.Target, "uid=b,") }, nil)
	conn, err := ldap.DialURL("ldap://" + p.Addr())
	require.NoError(t, err)
	defer conn.Close()
	conn.SetTimeout(3 * time.Second)
	add := func(uid string) error {
		r := ldap.NewAddRequest("uid="+uid+",ou=people,dc=t", nil)
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		return conn.Add(r)
	}
	require.NoError(t, add("a"), "an add the trigger does not match passes, answered")
	require.Equal(t, "uid=a,ou=people,dc=t", <-added)
	require.Error(t, add("b"), "the matched add gets no answer")
	require.Equal(t, "uid=b,ou=people,dc=t", <-added, "but the server applied it")
	<-tr.Fired()
	require.Equal(t, "add", tr.Request.Op)
}

// The adversary of the proxy is another local process that finds its
// loopback port: it gets a relay to a private test server and nothing
// more. The proxy adds no credentials, so a request without them is
// refused by the server behind it exactly as it would be directly.
func TestProxyAddsNoCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") == "" {
			http.Error(w, "permission denied", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	p, err := NewProxy("vault", HTTP, strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer p.Close()
	require.True(t, strings.HasPrefix(p.Addr(), "127.0.0.1:"), "loopback only")
	resp, err := http.Get("http://" + p.Addr() + "/v1/secret/data/x")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// A private stack's HRIS signs a webhook for every hire it enters; left to
// its default it would deliver them to the shared dev intake, which would
// start joiners on the shared stack for records that exist only here.
// StartStack refuses before starting anything unless the URL is pointed
// elsewhere.
func TestStartStackRefusesTheSharedIntake(t *testing.T) {
	t.Setenv("JOINERY_STACK_WEBHOOK_URL", "")
	dir := t.TempDir()
	s, err := StartStack(context.Background(), dir, dir, "/nonexistent/worker")
	require.Nil(t, s)
	require.ErrorContains(t, err, "JOINERY_STACK_WEBHOOK_URL")
	entries, _ := os.ReadDir(dir)
	require.Empty(t, entries, "nothing was created")
}
