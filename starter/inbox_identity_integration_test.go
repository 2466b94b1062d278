package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// serveEnv is `starter serve` pointed at the dev stack on free addresses,
// with its own decision key and no metrics listeners (their default ports
// may be taken by a running `make run`).
func serveEnv(t *testing.T, ep stack.Endpoints) (env []string, inboxAddr string) {
	t.Helper()
	keys := t.TempDir()
	keyFile := filepath.Join(keys, "decision.pem")
	require.NoError(t, decision.EnsureKeyFiles(keyFile, filepath.Join(keys, "decision.pub")))
	intakeAddr, inboxAddr := freeAddr(t), freeAddr(t)
	env = append(os.Environ(), stack.Env(ep)...)
	return append(env, "JOINERY_INTAKE_ADDR="+intakeAddr, "JOINERY_INBOX_ADDR="+inboxAddr,
		"JOINERY_INBOX_URL=http://"+inboxAddr, "JOINERY_DECISION_KEY_FILE="+keyFile, "JOINERY_LOG_LEVEL=info",
		"JOINERY_INTAKE_METRICS_ADDR=off", "JOINERY_INBOX_METRICS_ADDR=off"), inboxAddr
}

func buildStarter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "starter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./starter: %v\n%s", err, out)
	}
	return bin
}

// startServe runs the binary until the test ends and waits for addr's
// /healthz.
func startServe(t *testing.T, bin string, env []string, addr string, args ...string) (*exec.Cmd, *syncWriter, chan error) {
	t.Helper()
	var logs syncWriter
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env, cmd.Stderr = env, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "%s did not answer: %s", addr, &logs)
	return cmd, &logs, exited
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn posts the inbox's login form as a browser would (its CSRF field
// and cookie) and returns the client, with its session, and the answer.
func signIn(t *testing.T, base, user, pass string) (*http.Client, *http.Response) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	require.NotNil(t, m, "the login form has a CSRF field: %s", body)
	req, err := http.NewRequest(http.MethodPost, base+"/login",
		strings.NewReader(url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {pass}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base) // what a browser sends with the form
	resp, err = c.Do(req)
	require.NoError(t, err)
	return c, resp
}

func read(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// The real `starter serve` against the dev stack's slapd and Temporal: the
// inbox finds people with its own read-only account. The worker's
// directory settings in its environment are made wrong on purpose, so a
// sign-in that still works cannot have used them. A manager signs in
// through the browser form and sees her page; the CLI's API works; a wrong
// password is refused; the process log holds neither password.
func TestIntegrationServeInboxSignsInWithItsOwnIdentity(t *testing.T) {
	ep := stacktest.Ensure(t)
	bin := buildStarter(t)
	env, inboxAddr := serveEnv(t, ep)
	env = append(env, "JOINERY_LDAP_BIND_DN=cn=nobody,ou=system,"+stack.LDAPBaseDN, "JOINERY_LDAP_BIND_PASSWORD=not-the-workers-password")
	cmd, logs, exited := startServe(t, bin, env, inboxAddr)
	base := "http://" + inboxAddr

	c, resp := signIn(t, base, "ada.lovelace", "dev-ada-pass")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "ada signs in: %s\n%s", read(t, resp), logs)
	require.Equal(t, "/", resp.Header.Get("Location"))
	resp.Body.Close()
	resp, err := c.Get(base + "/")
	require.NoError(t, err)
	home := read(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, home)
	require.Contains(t, home, "ada.lovelace")
	require.Contains(t, home, "Waiting for me")

	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/waiting", nil)
	require.NoError(t, err)
	req.SetBasicAuth("grace.hopper", "dev-grace-pass")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, read(t, resp))
	resp.Body.Close()

	_, resp = signIn(t, base, "ada.lovelace", "wrong-password")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, read(t, resp), "Invalid username or password")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "serve must exit 0 after SIGINT\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop after SIGINT: %s", logs)
	}
	require.Contains(t, logs.String(), "signed in")
	for _, secret := range []string{stack.LDAPInboxPassword, "dev-ada-pass", "not-the-workers-password"} {
		require.NotContains(t, logs.String(), secret)
	}
}

// What an operator can get wrong: no inbox password outside development
// mode, or the worker's account given to the inbox. `starter serve` refuses
// to start, exit 1, naming the variable, and never echoes a password. A
// wrong inbox password starts (the directory may be down at start) but no
// sign-in works and none is blamed on the person. The intake alone
// (`--inbox-addr=`) needs no directory identity at all.
func TestIntegrationServeInboxIdentityMisconfigured(t *testing.T) {
	ep := stacktest.Ensure(t)
	bin := buildStarter(t)
	env, inboxAddr := serveEnv(t, ep)

	for name, tc := range map[string]struct {
		extra []string
		want  string
	}{
		"no password outside development mode": {[]string{"JOINERY_DEV_MODE=false", "JOINERY_INBOX_LDAP_BIND_PASSWORD="},
			"JOINERY_INBOX_LDAP_BIND_PASSWORD"},
		"the worker's account": {[]string{"JOINERY_INBOX_LDAP_BIND_DN=" + stack.LDAPServiceDN, "JOINERY_INBOX_LDAP_BIND_PASSWORD=" + stack.LDAPServicePassword},
			"JOINERY_INBOX_LDAP_BIND_DN is the worker's account"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, "serve")
			cmd.Env = append(append([]string{}, env...), tc.extra...)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "%s", out)
			require.Equal(t, exitFailed, cmd.ProcessState.ExitCode(), "%s", out)
			require.Contains(t, string(out), tc.want)
			require.NotContains(t, string(out), stack.LDAPServicePassword)
			require.NotContains(t, string(out), "approval inbox listening")
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		env := append(append([]string{}, env...), "JOINERY_INBOX_LDAP_BIND_PASSWORD=not-the-inbox-password")
		_, logs, _ := startServe(t, bin, env, inboxAddr)
		_, resp := signIn(t, "http://"+inboxAddr, "ada.lovelace", "dev-ada-pass")
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Contains(t, read(t, resp), "directory is not answering")
		require.NotContains(t, logs.String(), "not-the-inbox-password")
		require.NotContains(t, logs.String(), "dev-ada-pass")
	})

	t.Run("intake alone", func(t *testing.T) {
		env, _ := serveEnv(t, ep) // addresses of its own
		env = append(env, "JOINERY_DEV_MODE=false", "JOINERY_INBOX_LDAP_BIND_PASSWORD=",
			"JOINERY_LDAP_BIND_PASSWORD=")
		var intakeAddr string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "JOINERY_INTAKE_ADDR="); ok {
				intakeAddr = v
			}
		}
		_, logs, _ := startServe(t, bin, env, intakeAddr, "--inbox-addr=")
		require.Contains(t, logs.String(), "the approval inbox is off")
	})
}
