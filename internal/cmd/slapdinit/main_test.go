package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/stack"
)

const (
	testRoot    = "root-pass-for-slapdinit-test"
	testService = "service-pass-for-slapdinit-test"
	testInbox   = "inbox-pass-for-slapdinit-test"
)

func repo(t *testing.T) string {
	t.Helper()
	r, err := stack.FindRepoDir()
	require.NoError(t, err)
	return r
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// serve runs slapd on dir's configuration on a free loopback port until the
// test ends, and returns its URL.
func serve(t *testing.T, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := fmt.Sprintf("ldap://%s", l.Addr())
	require.NoError(t, l.Close())
	cmd := exec.Command(stack.SlapdBinary(), "-f", filepath.Join(dir, "slapd.conf"), "-h", url+"/", "-d", "0")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(t, cmd.Start())
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool {
		c, err := ldap.DialURL(url)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 30*time.Second, 100*time.Millisecond, "slapd did not start: %s", &log)
	return url
}

func bind(url, dn, pw string) error {
	c, err := ldap.DialURL(url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(dn, pw)
}

// The inbox's account in the image: with SLAPD_INBOX_PASSWORD it binds with
// that password (never the dev one); without, it exists but is locked.
func TestInboxAccountPassword(t *testing.T) {
	if _, err := os.Stat(stack.SlapdBinary()); err != nil {
		t.Fatalf("slapd is not installed (make tools): %v", err)
	}
	for name, inbox := range map[string]string{"set": testInbox, "unset": ""} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"SLAPD_ROOT_PASSWORD": testRoot, "SLAPD_SERVICE_PASSWORD": testService,
				"SLAPD_INBOX_PASSWORD": inbox}
			require.NoError(t, run([]string{"-dir", dir, "-repo", repo(t), "-urls", "ldap:///"}, getenv(env)))
			url := serve(t, dir)
			require.NoError(t, bind(url, stack.LDAPServiceDN, testService))
			require.True(t, ldap.IsErrorWithCode(bind(url, stack.LDAPInboxDN, stack.LDAPInboxPassword), ldap.LDAPResultInvalidCredentials),
				"never the dev password")
			if inbox == "" {
				require.True(t, ldap.IsErrorWithCode(bind(url, stack.LDAPInboxDN, testService), ldap.LDAPResultInvalidCredentials))
				return
			}
			require.NoError(t, bind(url, stack.LDAPInboxDN, testInbox))
			seed, err := os.ReadFile(filepath.Join(dir, "seed.ldif"))
			require.NoError(t, err)
			require.NotContains(t, string(seed), testInbox, "only its salted hash is written")
		})
	}
}

// A deployment whose directory was loaded before the inbox's account
// existed gets it at the next start of the image, with the operator's
// password; what the directory already holds is kept, and a start after
// that adds nothing.
func TestExistingDirectoryGetsTheInboxAccount(t *testing.T) {
	if _, err := os.Stat(stack.SlapdBinary()); err != nil {
		t.Fatalf("slapd is not installed (make tools): %v", err)
	}
	dir := t.TempDir()
	env := map[string]string{"SLAPD_ROOT_PASSWORD": testRoot, "SLAPD_SERVICE_PASSWORD": testService}
	args := []string{"-dir", dir, "-repo", repo(t), "-urls", "ldap:///"}
	require.NoError(t, run(args, getenv(env)))
	// Make it old: reload the database from the seed without the inbox's
	// entry, as an image from before it would have.
	seed, err := os.ReadFile(filepath.Join(dir, "seed.ldif"))
	require.NoError(t, err)
	var old []string
	for _, block := range strings.Split(string(seed), "\n\n") {
		if !strings.Contains(block, "dn: "+stack.LDAPInboxDN) {
			old = append(old, block)
		}
	}
	require.Len(t, old, strings.Count(string(seed), "\n\n"), "exactly one block dropped")
	oldSeed := filepath.Join(t.TempDir(), "old.ldif")
	require.NoError(t, os.WriteFile(oldSeed, []byte(strings.Join(old, "\n\n")), 0o600))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "data")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	out, err := exec.Command(filepath.Join(filepath.Dir(stack.SlapdBinary()), "slapadd"), "-f", filepath.Join(dir, "slapd.conf"), "-l", oldSeed).CombinedOutput()
	require.NoError(t, err, "%s", out)

	// A joiner's entry created since, which the upgrade must keep.
	url := serve(t, dir)
	root, err := ldap.DialURL(url)
	require.NoError(t, err)
	require.NoError(t, root.Bind(stack.LDAPBindDN, testRoot))
	sr, err := root.Search(ldap.NewSearchRequest(stack.LDAPInboxDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), "old directory: %v %v", sr, err)
	add := ldap.NewAddRequest("uid=kept,ou=people,"+stack.LDAPBaseDN, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"kept"})
	add.Attribute("cn", []string{"Kept"})
	add.Attribute("sn", []string{"Kept"})
	require.NoError(t, root.Add(add))
	root.Close()
	stopSlapd(t, dir)

	// The next start, now with the inbox's password.
	env["SLAPD_INBOX_PASSWORD"] = testInbox
	require.NoError(t, run(args, getenv(env)))
	_, err = os.Stat(filepath.Join(dir, "inbox-account.ldif"))
	require.True(t, os.IsNotExist(err), "the one-entry LDIF is removed")
	url = serve(t, dir)
	require.NoError(t, bind(url, stack.LDAPInboxDN, testInbox))
	c, err := ldap.DialURL(url)
	require.NoError(t, err)
	require.NoError(t, c.Bind(stack.LDAPBindDN, testRoot))
	sr, err = c.Search(ldap.NewSearchRequest("uid=kept,ou=people,"+stack.LDAPBaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.NoError(t, err, "the directory's own entries are kept")
	require.Len(t, sr.Entries, 1)
	c.Close()
	stopSlapd(t, dir)

	// And again: already there, nothing added (a second slapadd of the
	// entry would fail), the password is the directory's.
	env["SLAPD_INBOX_PASSWORD"] = "another-inbox-password-now"
	require.NoError(t, run(args, getenv(env)))
	url = serve(t, dir)
	require.NoError(t, bind(url, stack.LDAPInboxDN, testInbox))
}

// stopSlapd stops the slapd serve started on dir (its pidfile), so the
// database can be opened offline again.
func stopSlapd(t *testing.T, dir string) {
	t.Helper()
	pidFile := filepath.Join(dir, "slapd.pid")
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &pid)
	require.NoError(t, err)
	p, err := os.FindProcess(pid)
	require.NoError(t, err)
	require.NoError(t, p.Signal(os.Interrupt))
	require.Eventually(t, func() bool {
		_, err := os.Stat(pidFile)
		return os.IsNotExist(err)
	}, 20*time.Second, 50*time.Millisecond, "slapd %d did not stop", pid)
}

// Bad input gets a clear error and writes nothing: an inbox password that
// is short, a dev one, or the worker's or the admin's.
func TestInboxPasswordIsRefusedWhenWeak(t *testing.T) {
	for name, tc := range map[string]struct{ pw, want string }{
		"short":    {"tiny-pw", "inbox account password is shorter than 16"},
		"dev":      {stack.LDAPInboxPassword, "inbox account password is a dev stack password"},
		"worker's": {testService, "inbox account password must differ"},
		"admin's":  {testRoot, "inbox account password must differ"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := run([]string{"-dir", dir, "-repo", repo(t), "-urls", "ldap:///"}, getenv(map[string]string{
				"SLAPD_ROOT_PASSWORD": testRoot, "SLAPD_SERVICE_PASSWORD": testService, "SLAPD_INBOX_PASSWORD": tc.pw}))
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), tc.pw, "the error does not echo the secret")
			entries, _ := os.ReadDir(dir)
			require.Empty(t, entries, "nothing written")
		})
	}
	// Both the variable and its _FILE: which one is meant is unclear.
	f := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(f, []byte(testInbox+"\n"), 0o600))
	err := run([]string{"-dir", t.TempDir(), "-repo", repo(t)}, getenv(map[string]string{
		"SLAPD_ROOT_PASSWORD": testRoot, "SLAPD_SERVICE_PASSWORD": testService,
		"SLAPD_INBOX_PASSWORD": testInbox, "SLAPD_INBOX_PASSWORD_FILE": f}))
	require.ErrorContains(t, err, "SLAPD_INBOX_PASSWORD or SLAPD_INBOX_PASSWORD_FILE, not both")
}
