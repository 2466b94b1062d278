package inbox

// The inbox against the dev stack: sign-in through the real slapd, the
// visibility queries against the real Temporal, and the credential handover
// against the real Vault.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// realEnv is an inbox wired to the dev stack; the clock is real.
func realEnv(t *testing.T) (*env, stack.Endpoints) {
	t.Helper()
	ep := stacktest.Ensure(t)
	// Bound as the inbox's own read-only account, as `starter serve` is.
	dir, err := directory.New(directory.Config{URL: ep.LDAPURL, BindDN: stack.LDAPInboxDN, BindPassword: stack.LDAPInboxPassword, BaseDN: ep.LDAPBaseDN})
	require.NoError(t, err)
	tc, err := client.Dial(client.Options{HostPort: ep.TemporalAddress, Namespace: ep.TemporalNamespace,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e := &env{t: t, signer: &countingSigner{FileSigner: decision.NewFileSigner(key)}, handover: t.TempDir(), clock: &fakeClock{}}
	var h http.Handler
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	e.srv, err = New(Config{BaseURL: e.ts.URL, HandoverDir: e.handover}, Deps{Auth: dir, Signer: e.signer, Temporal: tc,
		Wrapping: VaultWrapping{Addr: ep.VaultAddr}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Pseudonyms: testPseudonyms(t)})
	require.NoError(t, err)
	h = e.srv.Handler()
	return e, ep
}

func TestIntegrationSignInThroughTheDirectory(t *testing.T) {
	e, _ := realEnv(t)

	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	home := b.get("/")
	require.Equal(t, http.StatusOK, home.Code, "the visibility query runs on the real server: %s", home.Body)
	require.Contains(t, home.Body, "ada.lovelace")
	require.Equal(t, http.StatusOK, b.get("/decisions").Code)

	for _, tc := range []struct{ user, pass string }{
		{"ada.lovelace", "wrong"}, {"edsger.dijkstra", "anything"}, {"nobody.here", "dev-ada-pass"},
	} {
		p := e.browser().login(tc.user, tc.pass)
		require.Equal(t, http.StatusUnauthorized, p.Code, tc.user)
		require.Contains(t, p.Body, "Invalid username or password", tc.user)
	}

	a := e.api("GET", "/api/v1/waiting", "grace.hopper", "dev-grace-pass", "")
	require.Equal(t, http.StatusOK, a.Code, a.Raw)
	require.Equal(t, http.StatusUnauthorized, e.api("GET", "/api/v1/waiting", "edsger.dijkstra", "", "").Code)
}

// wrap response-wraps data with the stack's root token, as the worker would.
func wrap(t *testing.T, ep stack.Endpoints, data map[string]any) string {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = ep.VaultAddr
	c, err := vault.NewClient(cfg)
	require.NoError(t, err)
	c.SetToken(ep.VaultToken)
	c.SetWrappingLookupFunc(func(string, string) string { return "10m" })
	s, err := c.Logical().Write("sys/wrapping/wrap", data)
	require.NoError(t, err)
	require.NotNil(t, s.WrapInfo)
	return s.WrapInfo.Token
}

func TestIntegrationHandoverWithVault(t *testing.T) {
	e, ep := realEnv(t)
	ctx := context.Background()
	now := time.Now()
	tok := wrap(t, ep, map[string]any{"password": "Initial-Cred-1"})
	e.deliver("ada.lovelace", "it-handover-1", tok, now)

	wi, err := VaultWrapping{Addr: ep.VaultAddr}.Lookup(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, wi.TTL)
	require.WithinDuration(t, now, wi.CreationTime, time.Minute)

	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	p := b.get("/handover")
	require.Contains(t, p.Body, "waiting for you")
	r := b.post("/handover/it-handover-1/unwrap", url.Values{"csrf": {csrfOf(t, p)}})
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	require.Contains(t, r.Body, "Initial-Cred-1")
	_, err = VaultWrapping{Addr: ep.VaultAddr}.Lookup(ctx, tok)
	require.ErrorIs(t, err, ErrWrapInvalid, "spent")

	// Someone else redeems the next token before its recipient does.
	tok2 := wrap(t, ep, map[string]any{"password": "Initial-Cred-2"})
	e.deliver("ada.lovelace", "it-handover-2", tok2, now)
	require.Contains(t, b.get("/handover").Body, "waiting for you")
	stolen, err := VaultWrapping{Addr: ep.VaultAddr}.Unwrap(ctx, tok2)
	require.NoError(t, err)
	require.Equal(t, "Initial-Cred-2", stolen["password"])
	p = b.get("/handover")
	require.Contains(t, p.Body, "possible interception")
	r = b.post("/handover/it-handover-2/unwrap", url.Values{"csrf": {csrfOf(t, p)}})
	require.Equal(t, http.StatusConflict, r.Code)
	require.NotContains(t, r.Body, "Initial-Cred-2")
}
