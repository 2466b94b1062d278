package stacktest

import (
	"context"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/stack"
)

// PrivateSlapd starts a slapd of the test's own (generated config, seed,
// access rules, on a free loopback port, state in t.TempDir()), stopped
// when the test ends, and returns its URL. A slapd that cannot start fails
// the test with the reason.
func PrivateSlapd(t testing.TB) string {
	t.Helper()
	cfg := Config(t)
	cfg.StateDir = t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.LDAPPort = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, err := stack.PrivateSlapd(ctx, cfg)
	if err != nil {
		t.Fatalf("stacktest: a private slapd is needed and could not start: %v", err)
	}
	t.Cleanup(stop)
	return cfg.Endpoints().LDAPURL
}

// RawEntry renders every attribute of dn, user and operational, password
// hash included, as the rootdn reads it, one sorted "name: value" line
// each: equal results mean the entry is byte-for-byte unchanged. A missing
// entry is nil.
func RawEntry(t testing.TB, url, dn string) []string {
	t.Helper()
	conn, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(stack.LDAPBindDN, stack.LDAPBindPassword))
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"*", "+"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, a := range res.Entries[0].Attributes {
		for _, v := range a.ByteValues {
			out = append(out, a.Name+": "+string(v))
		}
	}
	sort.Strings(out)
	return out
}
