package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// startInbox runs the approval inbox in-process for the harness's stack,
// built exactly as `starter serve` builds it (the stack's decision key, the
// real directory, Vault) and points the CLI at it (JOINERY_INBOX_URL).
func startInbox(t *testing.T, h *e2e.Harness) {
	t.Helper()
	cfg := h.Cfg
	if !filepath.IsAbs(cfg.DecisionKeyFile) {
		repo, err := stack.FindRepoDir()
		require.NoError(t, err)
		cfg.DecisionKeyFile = filepath.Join(repo, cfg.DecisionKeyFile)
	}
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	cfg.InboxURL = ts.URL
	ib, err := newInbox(cfg, h.C, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err, "the inbox needs the stack's decision key (%s)", cfg.DecisionKeyFile)
	handler = ib.Handler()
	t.Setenv("JOINERY_INBOX_URL", ts.URL)
}

// cliAs runs the CLI with password on stdin (for --password-stdin).
func cliAs(t *testing.T, password string, args ...string) (int, string, string) {
	t.Helper()
	withStdin(t, password+"\n")
	return cli(t, append(args, "--password-stdin")...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// `starter serve` runs the intake and the inbox side by side; SIGINT stops
// both and the process exits 0. Without its signing key it refuses to start
// at all rather than run the intake alone.
func TestIntegrationServeRunsTheInbox(t *testing.T) {
	ep := stacktest.Ensure(t)
	bin := filepath.Join(t.TempDir(), "starter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./starter: %v\n%s", err, out)
	}
	keys := t.TempDir()
	keyFile, pubFile := filepath.Join(keys, "decision.pem"), filepath.Join(keys, "decision.pub")
	require.NoError(t, decision.EnsureKeyFiles(keyFile, pubFile))
	intakeAddr, inboxAddr := freeAddr(t), freeAddr(t)
	env := append(os.Environ(), stack.Env(ep)...)
	env = append(env, "JOINERY_INTAKE_ADDR="+intakeAddr, "JOINERY_INBOX_ADDR="+inboxAddr,
		"JOINERY_INBOX_URL=http://"+inboxAddr, "JOINERY_DECISION_KEY_FILE="+keyFile, "JOINERY_LOG_LEVEL=info")

	var logs syncWriter
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stderr = env, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for _, u := range []string{"http://" + intakeAddr + "/healthz", "http://" + inboxAddr + "/healthz"} {
		require.Eventually(t, func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 20*time.Second, 50*time.Millisecond, "%s did not answer: %s", u, logs.String())
	}
	resp, err := http.Get("http://" + inboxAddr + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "serve must exit 0 after SIGINT\n%s", logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop after SIGINT: %s", logs.String())
	}
	require.Contains(t, logs.String(), "approval inbox listening")
	require.NotContains(t, logs.String(), ep.LDAPBindPassword)

	// No key: no start, and the reason names the variable.
	cmd = exec.Command(bin, "serve")
	cmd.Env = append(env, "JOINERY_DECISION_KEY_FILE="+filepath.Join(keys, "missing.pem"))
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, exitFailed, cmd.ProcessState.ExitCode())
	require.Contains(t, string(out), "JOINERY_DECISION_KEY_FILE")
}

// Break-glass goes straight to Temporal, with the operator's name and a
// reason; the default policy enables it on no route, so the joiner refuses
// it and the CLI says so with the refused exit code.
func TestIntegrationBreakGlassNeedsPolicy(t *testing.T) {
	h := e2e.NewHarness(t)
	setEnv(t, h)
	id := h.Hire("Break", "Glass")
	code, _, errOut := cli(t, "start", id, "--as", "it-operator")
	require.Equal(t, exitOK, code, errOut)
	require.Eventually(t, func() bool {
		code, out, _ := cli(t, "status", id)
		return code == exitOK && strings.Contains(out, "AwaitingApproval")
	}, 30*time.Second, 200*time.Millisecond)

	code, _, errOut = cli(t, "approve", id, "--break-glass", "--reason", "inbox down during the outage", "--as", "it-operator", "--wait")
	require.Equal(t, exitRefused, code, errOut)
	require.Contains(t, errOut, "break-glass decisions are off")
	_, out, _ := cli(t, "status", id)
	require.Contains(t, out, "AwaitingApproval", "still waiting for a real approval")
}
