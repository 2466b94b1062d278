package run

// Temporal client authentication without a Temporal server: what
// ClientOptions refuses (each refusal naming its variable), what it builds,
// and, against an in-process gRPC frontend, that the API key really goes out
// on the wire, with mTLS and on loopback without TLS.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/joinery/joinery/internal/config"
)

// testServerName is the DNS name in the test server certificate besides
// 127.0.0.1, for JOINERY_TEMPORAL_TLS_SERVER_NAME.
const testServerName = "temporal.joinery.test"

// testPKI is a throw-away CA with a server certificate (127.0.0.1 and
// testServerName) and a client certificate, the client side written to
// files the way a deployment would mount them.
type testPKI struct {
	CAPool *x509.CertPool
	Server tls.Certificate
	// CAFile, CertFile and KeyFile are PEM files: the CA certificate, the
	// client certificate and its PKCS#8 key. ServerKeyFile is the server's
	// key, which does not match CertFile.
	CAFile, CertFile, KeyFile, ServerKeyFile string
}

// newPKI generates a CA and the certificates it signs, in a temporary
// directory of t.
func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert, key, der
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return der
	}

	ca, caKey, caDER := issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "Joinery test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	_, srvKey, srvDER := issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: testServerName}, DNSNames: []string{testServerName},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	_, cliKey, cliDER := issue(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "joinery-worker"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		CAPool: pool,
		Server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
		CAFile: write("ca.pem", "CERTIFICATE", caDER), CertFile: write("client.pem", "CERTIFICATE", cliDER),
		KeyFile: write("client-key.pem", "PRIVATE KEY", keyDER(cliKey)), ServerKeyFile: write("server-key.pem", "PRIVATE KEY", keyDER(srvKey)),
	}
}

// serverTLS is what the test frontends demand: a client certificate from
// the test CA, over HTTP/2 as gRPC speaks it.
func (p testPKI) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.Server}, ClientCAs: p.CAPool,
		ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	}
}

func TestClientOptionsWithoutAuthenticationIsPlaintext(t *testing.T) {
	opts, err := ClientOptions(config.Config{TemporalAddress: "127.0.0.1:7233", TemporalNamespace: "default"}, nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7233", opts.HostPort)
	require.Equal(t, "default", opts.Namespace)
	require.Nil(t, opts.ConnectionOptions.TLS)
	require.False(t, opts.ConnectionOptions.TLSDisabled)
	require.Nil(t, opts.Credentials)
}

func TestClientOptionsBuildsTLS(t *testing.T) {
	p := newPKI(t)

	opts, err := ClientOptions(config.Config{TemporalAddress: "temporal:7233", TemporalTLSCAFile: p.CAFile}, nil)
	require.NoError(t, err)
	tc := opts.ConnectionOptions.TLS
	require.NotNil(t, tc, "a CA file turns TLS on")
	require.NotNil(t, tc.RootCAs)
	require.Equal(t, uint16(tls.VersionTLS12), tc.MinVersion)
	require.Empty(t, tc.Certificates)
	require.Empty(t, tc.ServerName, "without a server name the address's host is verified")

	opts, err = ClientOptions(config.Config{TemporalAddress: "temporal:7233", TemporalTLSCAFile: p.CAFile,
		TemporalTLSCertFile: p.CertFile, TemporalTLSKeyFile: p.KeyFile, TemporalTLSServerName: testServerName}, nil)
	require.NoError(t, err)
	tc = opts.ConnectionOptions.TLS
	require.Len(t, tc.Certificates, 1)
	require.Equal(t, testServerName, tc.ServerName)
	require.NotNil(t, tc.RootCAs)

	// A client certificate alone is TLS against the system roots (Temporal
	// Cloud's frontends carry publicly trusted certificates).
	opts, err = ClientOptions(config.Config{TemporalAddress: "ns.acct.tmprl.cloud:7233",
		TemporalTLSCertFile: p.CertFile, TemporalTLSKeyFile: p.KeyFile}, nil)
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	require.Nil(t, opts.ConnectionOptions.TLS.RootCAs)
	require.Len(t, opts.ConnectionOptions.TLS.Certificates, 1)
}

func TestClientOptionsRefusalsNameTheVariable(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))

	for name, tc := range map[string]struct {
		cfg  config.Config
		want []string
	}{
		"cert without key": {config.Config{TemporalTLSCAFile: p.CAFile, TemporalTLSCertFile: p.CertFile},
			[]string{"JOINERY_TEMPORAL_TLS_CERT_FILE", "JOINERY_TEMPORAL_TLS_KEY_FILE", "both"}},
		"key without cert": {config.Config{TemporalTLSKeyFile: p.KeyFile},
			[]string{"JOINERY_TEMPORAL_TLS_CERT_FILE", "JOINERY_TEMPORAL_TLS_KEY_FILE", "both"}},
		"unreadable CA": {config.Config{TemporalTLSCAFile: missing},
			[]string{"JOINERY_TEMPORAL_TLS_CA_FILE", "missing.pem"}},
		"CA without a certificate": {config.Config{TemporalTLSCAFile: notPEM},
			[]string{"JOINERY_TEMPORAL_TLS_CA_FILE", "no PEM certificate"}},
		"unreadable cert": {config.Config{TemporalTLSCAFile: p.CAFile, TemporalTLSCertFile: missing, TemporalTLSKeyFile: p.KeyFile},
			[]string{"JOINERY_TEMPORAL_TLS_CERT_FILE", "missing.pem"}},
		"unreadable key": {config.Config{TemporalTLSCAFile: p.CAFile, TemporalTLSCertFile: p.CertFile, TemporalTLSKeyFile: missing},
			[]string{"JOINERY_TEMPORAL_TLS_KEY_FILE", "missing.pem"}},
		"key of another certificate": {config.Config{TemporalTLSCAFile: p.CAFile, TemporalTLSCertFile: p.CertFile, TemporalTLSKeyFile: p.ServerKeyFile},
			[]string{"JOINERY_TEMPORAL_TLS_CERT_FILE", "JOINERY_TEMPORAL_TLS_KEY_FILE", "does not match"}},
		"cert that is no certificate": {config.Config{TemporalTLSCertFile: notPEM, TemporalTLSKeyFile: p.KeyFile},
			[]string{"JOINERY_TEMPORAL_TLS_CERT_FILE", "JOINERY_TEMPORAL_TLS_KEY_FILE"}},
		"server name without TLS": {config.Config{TemporalTLSServerName: testServerName},
			[]string{"JOINERY_TEMPORAL_TLS_SERVER_NAME", "JOINERY_TEMPORAL_TLS_CA_FILE"}},
	} {
		t.Run(name, func(t *testing.T) {
			tc.cfg.TemporalAddress = "temporal:7233"
			_, err := ClientOptions(tc.cfg, nil)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestClientOptionsAPIKey(t *testing.T) {
	p := newPKI(t)
	const key = "tmprl-test-key-1234"

	// Off loopback the key never travels in clear, and the refusal does
	// not print it.
	for _, addr := range []string{"temporal:7233", "10.0.0.5:7233", "127.0.0.1.nip.io:7233", "temporal"} {
		_, err := ClientOptions(config.Config{TemporalAddress: addr, TemporalAPIKey: key}, nil)
		require.ErrorContains(t, err, "JOINERY_TEMPORAL_API_KEY", addr)
		require.ErrorContains(t, err, "JOINERY_TEMPORAL_TLS_CA_FILE", addr)
		require.NotContains(t, err.Error(), key, addr)
	}

	// On loopback it may, and TLS stays off: the SDK would otherwise turn
	// it on by itself against a plaintext server.
	for _, addr := range []string{"127.0.0.1:7233", "127.1.2.3:7233", "[::1]:7233", "localhost:7233"} {
		opts, err := ClientOptions(config.Config{TemporalAddress: addr, TemporalAPIKey: key}, nil)
		require.NoError(t, err, addr)
		require.NotNil(t, opts.Credentials, addr)
		require.Nil(t, opts.ConnectionOptions.TLS, addr)
		require.True(t, opts.ConnectionOptions.TLSDisabled, addr)
	}

	opts, err := ClientOptions(config.Config{TemporalAddress: "temporal:7233", TemporalAPIKey: key, TemporalTLSCAFile: p.CAFile}, nil)
	require.NoError(t, err)
	require.NotNil(t, opts.Credentials)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	require.False(t, opts.ConnectionOptions.TLSDisabled)
}

// fakeFrontend answers GetSystemInfo, the call a client makes when it
// dials, and remembers the authorization metadata of each.
type fakeFrontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu   sync.Mutex
	auth [][]string
}

func (f *fakeFrontend) GetSystemInfo(ctx context.Context, _ *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.auth = append(f.auth, md.Get("authorization"))
	f.mu.Unlock()
	return &workflowservice.GetSystemInfoResponse{}, nil
}

func (f *fakeFrontend) authorizations() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.auth...)
}

// serveFake starts a fake frontend on a free loopback port, with TLS when
// tc is not nil, and returns its address.
func serveFake(t *testing.T, tc *tls.Config) (*fakeFrontend, string) {
	t.Helper()
	var opts []grpc.ServerOption
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	srv := grpc.NewServer(opts...)
	f := &fakeFrontend{}
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return f, l.Addr().String()
}

func TestDialSendsTheAPIKey(t *testing.T) {
	const key = "tmprl-test-key-1234"
	p := newPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("with mTLS", func(t *testing.T) {
		f, addr := serveFake(t, p.serverTLS())
		c, err := Dial(ctx, config.Config{TemporalAddress: addr, TemporalNamespace: "default", TemporalAPIKey: key,
			TemporalTLSCAFile: p.CAFile, TemporalTLSCertFile: p.CertFile, TemporalTLSKeyFile: p.KeyFile}, nil)
		require.NoError(t, err)
		c.Close()
		require.NotEmpty(t, f.authorizations())
		for _, a := range f.authorizations() {
			require.Equal(t, []string{"Bearer " + key}, a)
		}
	})

	t.Run("on loopback without TLS", func(t *testing.T) {
		f, addr := serveFake(t, nil)
		c, err := Dial(ctx, config.Config{TemporalAddress: addr, TemporalNamespace: "default", TemporalAPIKey: key}, nil)
		require.NoError(t, err)
		c.Close()
		require.NotEmpty(t, f.authorizations())
		require.Equal(t, []string{"Bearer " + key}, f.authorizations()[0])
	})

	t.Run("no key, no header", func(t *testing.T) {
		f, addr := serveFake(t, nil)
		c, err := Dial(ctx, config.Config{TemporalAddress: addr, TemporalNamespace: "default"}, nil)
		require.NoError(t, err)
		c.Close()
		require.NotEmpty(t, f.authorizations())
		require.Empty(t, f.authorizations()[0])
	})
}
