package run

// Temporal client authentication against the dev stack's real Temporal,
// behind a TLS-terminating proxy that demands a client certificate the way
// a production frontend with mTLS does: what run.Dial builds from the
// JOINERY_TEMPORAL_TLS_* variables gets through, and a client without the
// certificate, or one that trusts the wrong CA, does not.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// tlsProxy terminates TLS (requiring and verifying a client certificate)
// on a free loopback port and forwards the plaintext to backend.
type tlsProxy struct {
	Addr string

	mu sync.Mutex
	// handshakeErrs are the client handshakes the proxy refused.
	handshakeErrs []error
}

// handshakeFailures returns the handshakes refused so far.
func (p *tlsProxy) handshakeFailures() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.handshakeErrs...)
}

// startTLSProxy runs the proxy until the end of t.
func startTLSProxy(t *testing.T, tc *tls.Config, backend string) *tlsProxy {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	require.NoError(t, err)
	p := &tlsProxy{Addr: l.Addr().String()}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn) bool {
		connsMu.Lock()
		defer connsMu.Unlock()
		if conns == nil {
			return false
		}
		conns[c] = true
		return true
	}
	t.Cleanup(func() {
		_ = l.Close()
		// Close every open connection so the copies end and Wait returns:
		// the clients under test may still hold theirs.
		connsMu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		conns = nil
		connsMu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				_ = c.Close()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.forward(c.(*tls.Conn), backend, track)
			}()
		}
	}()
	return p
}

// forward completes the handshake first, so a refused client is recorded
// (and never reaches Temporal), then copies both ways until either side
// closes.
func (p *tlsProxy) forward(c *tls.Conn, backend string, track func(net.Conn) bool) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		p.mu.Lock()
		p.handshakeErrs = append(p.handshakeErrs, err)
		p.mu.Unlock()
		return
	}
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	if !track(b) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

func TestDialThroughMTLS(t *testing.T) {
	ep := stacktest.Ensure(t)
	pki := newPKI(t)
	proxy := startTLSProxy(t, pki.serverTLS(), ep.TemporalAddress)
	base := config.Config{TemporalAddress: proxy.Addr, TemporalNamespace: ep.TemporalNamespace,
		TemporalTLSCAFile: pki.CAFile, TemporalTLSCertFile: pki.CertFile, TemporalTLSKeyFile: pki.KeyFile}

	dial := func(t *testing.T, cfg config.Config) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := Dial(ctx, cfg, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: cfg.TemporalNamespace}); err != nil {
			return err
		}
		_, err = c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: cfg.TemporalNamespace, PageSize: 1})
		return err
	}

	t.Run("with the client certificate", func(t *testing.T) {
		require.NoError(t, dial(t, base))
	})

	t.Run("with the server name", func(t *testing.T) {
		cfg := base
		cfg.TemporalTLSServerName = testServerName
		require.NoError(t, dial(t, cfg))
	})

	t.Run("with an API key as well", func(t *testing.T) {
		// The dev server has no authorizer and ignores the key; that the key
		// is sent is TestDialSendsTheAPIKey's. Here: it does not get in the
		// way of mTLS.
		cfg := base
		cfg.TemporalAPIKey = "tmprl-test-key-1234"
		require.NoError(t, dial(t, cfg))
	})

	t.Run("without the client certificate", func(t *testing.T) {
		before := len(proxy.handshakeFailures())
		cfg := base
		cfg.TemporalTLSCertFile, cfg.TemporalTLSKeyFile = "", ""
		err := dial(t, cfg)
		require.Error(t, err)
		t.Log(err)
		// What the client sees depends on timing (the alert, or a broken
		// pipe when the proxy closed first), so the proof is the proxy's
		// refusal, which it records after sending the alert: the client may
		// have given up a moment before.
		require.Eventually(t, func() bool { return len(proxy.handshakeFailures()) > before }, 5*time.Second, 10*time.Millisecond,
			"the proxy refused the handshake")
		require.ErrorContains(t, errors.Join(proxy.handshakeFailures()[before:]...), "certificate")
	})

	t.Run("trusting the wrong CA", func(t *testing.T) {
		other := newPKI(t)
		cfg := base
		cfg.TemporalTLSCAFile = other.CAFile
		err := dial(t, cfg)
		require.Error(t, err)
		t.Log(err)
		require.ErrorContains(t, err, "x509: certificate signed by unknown authority")
	})

	t.Run("checking another server name", func(t *testing.T) {
		cfg := base
		cfg.TemporalTLSServerName = "other.joinery.test"
		err := dial(t, cfg)
		require.Error(t, err)
		require.ErrorContains(t, err, "other.joinery.test")
	})

	t.Run("plaintext", func(t *testing.T) {
		cfg := base
		cfg.TemporalTLSCAFile, cfg.TemporalTLSCertFile, cfg.TemporalTLSKeyFile = "", "", ""
		err := dial(t, cfg)
		require.Error(t, err)
		t.Log(err)
	})
}
