package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// owner is a uid:gid the job can hand files to: another user's when the
// test runs as root (so ownership is really checked), else this user's.
func owner() (string, uint32) {
	if os.Getuid() == 0 {
		return "65532:65532", 65532
	}
	return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), uint32(os.Getuid())
}

// Client certificates for Temporal's frontend: CN and URI SAN are the
// client's name, no DNS name, exactly the clientAuth usage, under a client
// CA of their own (so the server CA, which Temporal's internode listeners
// trust, vouches for no client); a -for server gets serverAuth only and a
// -peer both. Each client's key is its owner's alone.
func TestCertsIssueClientCertificatesUnderTheirOwnCA(t *testing.T) {
	dir, clients := t.TempDir(), filepath.Join(t.TempDir(), "clients")
	who, uid := owner()
	args := []string{"-dir", dir, "-client-dir", clients, "-peer", "temporal=" + who, "-for", "vault=" + who,
		"-client", "worker=" + who, "-client", "temporal-ui=" + who}
	require.NoError(t, runCerts(args))
	ca, err := readCert(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	cca, err := readCert(filepath.Join(dir, "client-ca.pem"))
	require.NoError(t, err)
	require.False(t, ca.Equal(cca), "two CAs")
	servers, clientPool := x509.NewCertPool(), x509.NewCertPool()
	servers.AddCert(ca)
	clientPool.AddCert(cca)
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}

	for _, n := range []string{"worker", "temporal-ui"} {
		c, err := readCert(filepath.Join(clients, n, "cert.pem"))
		require.NoError(t, err)
		require.Equal(t, n, c.Subject.CommonName)
		require.Equal(t, clientAuth, c.ExtKeyUsage)
		require.Len(t, c.URIs, 1)
		require.Equal(t, "spiffe://joinery.deployment/client/"+n, c.URIs[0].String())
		require.Empty(t, c.DNSNames)
		require.Empty(t, c.IPAddresses)
		_, err = c.Verify(x509.VerifyOptions{Roots: clientPool, KeyUsages: clientAuth})
		require.NoError(t, err)
		_, err = c.Verify(x509.VerifyOptions{Roots: servers, KeyUsages: clientAuth})
		require.Error(t, err, "the server CA vouches for no client")
		_, err = c.Verify(x509.VerifyOptions{Roots: clientPool})
		require.Error(t, err, "not a server certificate")
		for f, mode := range map[string]os.FileMode{filepath.Join(clients, n): 0o700, filepath.Join(clients, n, "key.pem"): 0o400} {
			st, err := os.Stat(f)
			require.NoError(t, err)
			require.Equal(t, mode, st.Mode().Perm(), f)
			require.Equal(t, uid, st.Sys().(*syscall.Stat_t).Uid, f)
		}
	}
	v, err := readCert(filepath.Join(dir, "vault", "cert.pem"))
	require.NoError(t, err)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, v.ExtKeyUsage, "a server key is no client identity")
	_, err = v.Verify(x509.VerifyOptions{Roots: servers, KeyUsages: clientAuth})
	require.Error(t, err)
	tc, err := readCert(filepath.Join(dir, "temporal", "cert.pem"))
	require.NoError(t, err)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, tc.ExtKeyUsage)
	_, err = tc.Verify(x509.VerifyOptions{Roots: servers, DNSName: "temporal", KeyUsages: clientAuth})
	require.NoError(t, err, "Temporal's own certificate serves its internode mTLS")

	// A second run keeps everything.
	before, _ := os.ReadFile(filepath.Join(clients, "worker", "cert.pem"))
	require.NoError(t, runCerts(args))
	after, _ := os.ReadFile(filepath.Join(clients, "worker", "cert.pem"))
	require.Equal(t, before, after)

	// A new client, a changed owner or a lost client key: everything is
	// issued again under new CAs (the old CA keys are gone).
	for _, change := range []func() []string{
		func() []string { return append(append([]string{}, args...), "-client", "sweeper="+who) },
		func() []string {
			out := append([]string{}, args...)
			out[len(out)-1] = "temporal-ui=1000"
			return out
		},
		func() []string {
			require.NoError(t, os.Remove(filepath.Join(clients, "worker", "key.pem")))
			return args
		},
	} {
		require.NoError(t, runCerts(change()))
		now, _ := os.ReadFile(filepath.Join(clients, "worker", "cert.pem"))
		require.NotEqual(t, before, now)
		before = now
		cca2, err := readCert(filepath.Join(dir, "client-ca.pem"))
		require.NoError(t, err)
		require.False(t, cca.Equal(cca2), "a new client CA")
		cca = cca2
	}
	// A client dropped from the list loses its access: a new client CA,
	// under which its old certificate does not chain.
	dropped, err := readCert(filepath.Join(clients, "temporal-ui", "cert.pem"))
	require.NoError(t, err)
	ccaBefore, err := readCert(filepath.Join(dir, "client-ca.pem"))
	require.NoError(t, err)
	beforePool := x509.NewCertPool()
	beforePool.AddCert(ccaBefore)
	_, err = dropped.Verify(x509.VerifyOptions{Roots: beforePool, KeyUsages: clientAuth})
	require.NoError(t, err, "control: it chained to the client CA before")
	without := []string{"-dir", dir, "-client-dir", clients, "-peer", "temporal=" + who, "-for", "vault=" + who, "-client", "worker=" + who}
	require.NoError(t, runCerts(without))
	cca, err = readCert(filepath.Join(dir, "client-ca.pem"))
	require.NoError(t, err)
	require.Equal(t, []string{"worker"}, cca.Subject.OrganizationalUnit, "the client CA names its clients")
	clientPool = x509.NewCertPool()
	clientPool.AddCert(cca)
	_, err = dropped.Verify(x509.VerifyOptions{Roots: clientPool, KeyUsages: clientAuth})
	require.Error(t, err, "the dropped client's certificate no longer chains")
	// No clients at all: the client CA goes.
	require.NoError(t, runCerts([]string{"-dir", dir, "-peer", "temporal=" + who, "-for", "vault=" + who}))
	_, err = os.Stat(filepath.Join(dir, "client-ca.pem"))
	require.True(t, os.IsNotExist(err), "no client CA without clients")

	// Certificates from before clients had a CA of their own gave every
	// server both usages: such a Vault certificate is replaced by a
	// server-only one.
	old := []string{"-dir", dir, "-client-dir", clients, "-peer", "temporal=" + who, "-peer", "vault=" + who,
		"-client", "worker=" + who, "-client", "temporal-ui=" + who}
	require.NoError(t, runCerts(old))
	require.NoError(t, runCerts(args))
	v, err = readCert(filepath.Join(dir, "vault", "cert.pem"))
	require.NoError(t, err)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, v.ExtKeyUsage)
}

// Bad input gets a clear error and writes nothing: names that are not DNS
// labels (or would leave the directory), one name in two roles, clients
// without a server, a client directory inside a server's (or the output
// directory itself), stray arguments.
func TestCertsRefuseBadClientInput(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range [][]string{
		{"-dir", dir, "-for", "temporal=1", "-client", "../x=1"},
		{"-dir", dir, "-for", "temporal=1", "-client", "Worker=1"},
		{"-dir", dir, "-for", "temporal=1", "-client", "-x=1"},
		{"-dir", dir, "-for", "temporal=1", "-client", "temporal=1", "-client-dir", dir},
		{"-dir", dir, "-for", "temporal=1", "-peer", "temporal=1"},
		{"-dir", dir, "-client", "worker=1"},
		{"-dir", dir, "-for", "temporal=1", "-client", "worker=1", "-client-dir", filepath.Join(dir, "temporal")},
		{"-dir", dir, "-for", "temporal=1", "-client", "worker=1", "-client-dir", filepath.Join(dir, "temporal", "sub")},
		{"-dir", dir, "-for", "temporal=1", "-client", "worker=x"},
		{"-dir", dir, "-for", "temporal=1", "extra"},
	} {
		err := runCerts(bad)
		require.Error(t, err, "%v", bad)
		t.Logf("%v: %v", bad, err)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written")
}
