package directory

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
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tlsServer listens with a fresh self-signed certificate for 127.0.0.1,
// completes the TLS handshake and hangs up: enough to exercise certificate
// verification without an LDAP server. It returns the address and the PEM
// file of the certificate.
func tlsServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "joinery test ldap"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))

	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}
	}()
	return l.Addr().String(), caFile
}

func TestLDAPSCertificateVerification(t *testing.T) {
	addr, caFile := tlsServer(t)
	tests := []struct {
		name      string
		mutate    func(*Config)
		typ       string
		retryable bool
	}{
		// Untrusted certificate: permanent, retrying cannot help.
		{"untrusted", func(*Config) {}, TypeTLS, false},
		// Trusted through CACertFile: the handshake passes and the failure
		// is the server hanging up, a retryable fault.
		{"ca file", func(c *Config) { c.CACertFile = caFile }, TypeUnavailable, true},
		{"skip verify", func(c *Config) { c.InsecureSkipVerify = true }, TypeUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.URL = "ldaps://" + addr
			cfg.Timeout = 2 * time.Second
			tt.mutate(&cfg)
			c, err := New(cfg)
			require.NoError(t, err)
			_, err = c.Taken(context.Background(), []string{"a"})
			requireType(t, err, tt.typ, tt.retryable)
		})
	}
}
