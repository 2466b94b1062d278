package directory

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// writeCerts makes a CA and a server certificate for 127.0.0.1.
func writeCerts(t *testing.T, dir string) stack.TLSFiles {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Joinery test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	files := stack.TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	write := func(path, typ string, b []byte) {
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
	}
	write(files.CA, "CERTIFICATE", caDER)
	write(files.Cert, "CERTIFICATE", der)
	write(files.Key, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	return files
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ldaps:// and StartTLS against a real slapd serving TLS (a private one, so
// the shared dev stack keeps plain loopback LDAP).
func TestIntegrationTLSAgainstSlapd(t *testing.T) {
	cfg := stacktest.Config(t)
	cfg.StateDir = t.TempDir()
	cfg.LDAPPort, cfg.LDAPSPort = freePort(t), freePort(t)
	tlsFiles := writeCerts(t, t.TempDir())
	cfg.LDAPTLS = &tlsFiles
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, err := stack.PrivateSlapd(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(stop)

	base := Config{BindDN: stack.LDAPServiceDN, BindPassword: stack.LDAPServicePassword, BaseDN: stack.LDAPBaseDN, Timeout: 5 * time.Second}
	cases := []struct {
		name     string
		mutate   func(*Config)
		wantType string
	}{
		{"ldaps with the CA", func(c *Config) { c.URL = "ldaps://127.0.0.1:" + itoa(cfg.LDAPSPort); c.CACertFile = tlsFiles.CA }, ""},
		{"StartTLS with the CA", func(c *Config) {
			c.URL = "ldap://127.0.0.1:" + itoa(cfg.LDAPPort)
			c.StartTLS, c.CACertFile = true, tlsFiles.CA
		}, ""},
		{"ldaps without trusting the CA", func(c *Config) { c.URL = "ldaps://127.0.0.1:" + itoa(cfg.LDAPSPort) }, TypeTLS},
		{"StartTLS without trusting the CA", func(c *Config) { c.URL = "ldap://127.0.0.1:" + itoa(cfg.LDAPPort); c.StartTLS = true }, TypeTLS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mutate(&c)
			cl, err := New(c)
			require.NoError(t, err)
			taken, err := cl.Taken(ctx, []string{"john.smith", "nobody-" + tag(t)})
			if tc.wantType != "" {
				requireType(t, err, tc.wantType, false)
				return
			}
			require.NoError(t, err)
			require.True(t, taken["john.smith"], "the seeded entry is visible over TLS")
			// A write round trip over TLS too.
			p := person(t, "Tls", "Tester")
			acct, err := cl.Claim(ctx, "tls-"+tag(t), p)
			require.NoError(t, err)
			require.NoError(t, cl.Delete(ctx, acct.DN, p.Owner))
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
