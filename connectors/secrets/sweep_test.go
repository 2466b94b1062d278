package secrets

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

// offlineClient builds a client that makes no request at construction and
// whose address refuses connections, so any request it did make would fail
// as TypeUnavailable rather than with the error under test.
func offlineClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.Addr, cfg.Token = "http://127.0.0.1:1", "offline"
	c, err := New(context.Background(), cfg)
	require.NoError(t, err)
	return c
}

func TestParseWrapPath(t *testing.T) {
	def := offlineClient(t, Config{})
	custom := offlineClient(t, Config{KVMount: "kv2", PathPrefix: "corp/joinery", AppRoleMount: "nhi-approle"})

	type want struct{ kind, key, logical string }
	cases := []struct {
		name string
		c    *Client
		path string
		want *want
	}{
		{"credential", def, "secret/data/joinery/joiners/200/initial-credential",
			&want{WrapCredential, "200", "joinery/joiners/200/initial-credential"}},
		{"credential key with dots and dashes", def, "secret/data/joinery/joiners/a.b-c_d/initial-credential",
			&want{WrapCredential, "a.b-c_d", "joinery/joiners/a.b-c_d/initial-credential"}},
		{"workload", def, "auth/approle/role/joinery-nhi-reporting-sync/secret-id",
			&want{WrapWorkload, "joinery-nhi-reporting-sync", "joinery-nhi-reporting-sync"}},
		{"custom mounts credential", custom, "kv2/data/corp/joinery/k1/initial-credential",
			&want{WrapCredential, "k1", "corp/joinery/k1/initial-credential"}},
		{"custom mounts workload", custom, "auth/nhi-approle/role/joinery-nhi-x/secret-id",
			&want{WrapWorkload, "joinery-nhi-x", "joinery-nhi-x"}},

		{"dot-dot key", def, "secret/data/joinery/joiners/../initial-credential", nil},
		{"dot key", def, "secret/data/joinery/joiners/./initial-credential", nil},
		{"traversal below the prefix", def, "secret/data/joinery/joiners/../x/initial-credential", nil},
		{"traversal out of the prefix", def, "secret/data/joinery/../x/200/initial-credential", nil},
		{"empty key", def, "secret/data/joinery/joiners//initial-credential", nil},
		{"trailing slash", def, "secret/data/joinery/joiners/200/initial-credential/", nil},
		{"deeper path", def, "secret/data/joinery/joiners/200/x/initial-credential", nil},
		{"ledger", def, "secret/data/joinery/joiners/200/initial-credential-handovers", nil},
		{"other secret name", def, "secret/data/joinery/joiners/200/api-key", nil},
		{"metadata verb", def, "secret/metadata/joinery/joiners/200/initial-credential", nil},
		{"other mount", def, "kv2/data/joinery/joiners/200/initial-credential", nil},
		{"mount as a suffix", def, "xsecret/data/joinery/joiners/200/initial-credential", nil},
		{"other prefix", def, "secret/data/joinery/joinersX/200/initial-credential", nil},
		{"default paths on a custom client", custom, "secret/data/joinery/joiners/200/initial-credential", nil},
		{"key with a space", def, "secret/data/joinery/joiners/a b/initial-credential", nil},
		{"key with a glob", def, "secret/data/joinery/joiners/*/initial-credential", nil},
		{"query string", def, "secret/data/joinery/joiners/200/initial-credential?version=1", nil},

		{"worker role", def, "auth/approle/role/joinery-worker/secret-id", nil},
		{"sweeper role", def, "auth/approle/role/joinery-sweeper/secret-id", nil},
		{"bare prefix role", def, "auth/approle/role/joinery-nhi-/secret-id", nil},
		{"role-id", def, "auth/approle/role/joinery-nhi-x/role-id", nil},
		{"custom secret id", def, "auth/approle/role/joinery-nhi-x/custom-secret-id", nil},
		{"secret-id lookup", def, "auth/approle/role/joinery-nhi-x/secret-id/lookup", nil},
		{"role traversal", def, "auth/approle/role/../joinery-nhi-x/secret-id", nil},
		{"role traversal after", def, "auth/approle/role/joinery-nhi-x/../secret-id", nil},
		{"role with a slash", def, "auth/approle/role/joinery-nhi-x/y/secret-id", nil},
		{"other approle mount", def, "auth/other/role/joinery-nhi-x/secret-id", nil},
		{"default mount on a custom client", custom, "auth/approle/role/joinery-nhi-x/secret-id", nil},
		{"login", def, "auth/approle/login", nil},

		{"sys wrap", def, "sys/wrapping/wrap", nil},
		{"token create", def, "auth/token/create", nil},
		{"empty", def, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind, key, logical, ok := tc.c.parseWrapPath(tc.path)
			if tc.want == nil {
				require.False(t, ok, "%q must not be taken for Joinery's (got %s %s %s)", tc.path, kind, key, logical)
				return
			}
			require.True(t, ok, "%q is Joinery's", tc.path)
			require.Equal(t, *tc.want, want{kind, key, logical})
		})
	}
}

// lookupData is a lookup-accessor answer as the API client decodes it
// (numbers as json.Number, lists as []any).
func lookupData(path string, policies []any, created int64, expires string) map[string]any {
	return map[string]any{
		"accessor":      "acc123",
		"path":          path,
		"policies":      policies,
		"creation_time": json.Number(strconv.FormatInt(created, 10)),
		"expire_time":   expires,
		"issue_time":    time.Unix(created, 0).UTC().Format(time.RFC3339Nano),
		"id":            "",
		"type":          "service",
		"creation_ttl":  json.Number("259200"),
		"ttl":           json.Number("255600"),
	}
}

func TestWrapTokenOf(t *testing.T) {
	c := offlineClient(t, Config{})
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	created := now.Add(-time.Hour).Unix()
	live := now.Add(71 * time.Hour).Format(time.RFC3339Nano)
	cred := "secret/data/joinery/joiners/200/initial-credential"
	wrapping := []any{"response-wrapping"}

	wt, ok := c.wrapTokenOf(lookupData(cred, wrapping, created, live), now)
	require.True(t, ok)
	require.Equal(t, WrapToken{Accessor: "acc123", Kind: WrapCredential, Key: "200",
		Path:      "joinery/joiners/200/initial-credential",
		CreatedAt: time.Unix(created, 0).UTC(), ExpiresAt: now.Add(71 * time.Hour), Age: time.Hour}, wt)

	// Age is Vault's creation_ttl - ttl, whatever our clock or the
	// creation time say.
	d0 := lookupData(cred, wrapping, created, live)
	d0["ttl"] = json.Number("259190")
	wt, ok = c.wrapTokenOf(d0, now)
	require.True(t, ok)
	require.Equal(t, 10*time.Second, wt.Age)
	d0["ttl"] = json.Number("259200")
	wt, ok = c.wrapTokenOf(d0, now)
	require.True(t, ok)
	require.Zero(t, wt.Age, "a token created this second is of age 0, not skipped")

	// creation_time missing: issue_time stands in.
	d := lookupData(cred, wrapping, created, live)
	delete(d, "creation_time")
	wt, ok = c.wrapTokenOf(d, now)
	require.True(t, ok)
	require.Equal(t, time.Unix(created, 0).UTC(), wt.CreatedAt)

	refused := map[string]map[string]any{
		"a non-wrapping token":         lookupData(cred, []any{"default"}, created, live),
		"wrapping plus another policy": lookupData(cred, []any{"response-wrapping", "root"}, created, live),
		"another policy plus wrapping": lookupData(cred, []any{"default", "response-wrapping"}, created, live),
		"no policies":                  lookupData(cred, []any{}, created, live),
		"policies missing":             func() map[string]any { d := lookupData(cred, wrapping, created, live); delete(d, "policies"); return d }(),
		"policies as a string": func() map[string]any {
			d := lookupData(cred, wrapping, created, live)
			d["policies"] = "response-wrapping"
			return d
		}(),
		"not Joinery's path":             lookupData("sys/wrapping/wrap", wrapping, created, live),
		"expired":                        lookupData(cred, wrapping, created, now.Add(-time.Second).Format(time.RFC3339Nano)),
		"expiring this instant":          lookupData(cred, wrapping, created, now.Format(time.RFC3339Nano)),
		"no expiry":                      lookupData(cred, wrapping, created, ""),
		"unparseable expiry":             lookupData(cred, wrapping, created, "tomorrow"),
		"no accessor":                    func() map[string]any { d := lookupData(cred, wrapping, created, live); d["accessor"] = ""; return d }(),
		"path not a string":              func() map[string]any { d := lookupData(cred, wrapping, created, live); d["path"] = 7; return d }(),
		"policies with a non-string":     lookupData(cred, []any{7}, created, live),
		"a Joinery path with traversal:": lookupData("secret/data/joinery/joiners/../initial-credential", wrapping, created, live),
		// Without Vault's times or TTLs there is no age Vault vouches for:
		// a zero CreatedAt or Age must not make a token look old.
		"no creation or issue time": func() map[string]any {
			d := lookupData(cred, wrapping, created, live)
			delete(d, "creation_time")
			delete(d, "issue_time")
			return d
		}(),
		"unparseable creation and issue time": func() map[string]any {
			d := lookupData(cred, wrapping, created, live)
			d["creation_time"], d["issue_time"] = "yesterday", "yesterday"
			return d
		}(),
		"no creation_ttl":        withField(lookupData(cred, wrapping, created, live), "creation_ttl", nil),
		"no ttl":                 withField(lookupData(cred, wrapping, created, live), "ttl", nil),
		"unparseable ttl":        withField(lookupData(cred, wrapping, created, live), "ttl", json.Number("soon")),
		"fractional ttl":         withField(lookupData(cred, wrapping, created, live), "ttl", 1.5),
		"negative ttl":           withField(lookupData(cred, wrapping, created, live), "ttl", json.Number("-1")),
		"zero creation_ttl":      withField(withField(lookupData(cred, wrapping, created, live), "creation_ttl", json.Number("0")), "ttl", json.Number("0")),
		"ttl above creation_ttl": withField(lookupData(cred, wrapping, created, live), "ttl", json.Number("259201")),
		"creation_ttl as a bool": withField(lookupData(cred, wrapping, created, live), "creation_ttl", true),
	}
	for name, d := range refused {
		_, ok := c.wrapTokenOf(d, now)
		require.False(t, ok, name)
	}
}

// withField sets (v != nil) or deletes (v == nil) one field of d.
func withField(d map[string]any, k string, v any) map[string]any {
	if v == nil {
		delete(d, k)
	} else {
		d[k] = v
	}
	return d
}

func TestVaultTime(t *testing.T) {
	want := time.Unix(1796131956, 0).UTC()
	for _, v := range []any{json.Number("1796131956"), float64(1796131956), int64(1796131956), 1796131956, "1796131956", "2026-12-01T13:32:36Z"} {
		got, ok := vaultTime(v)
		require.True(t, ok, "%#v", v)
		require.Equal(t, want, got, "%#v", v)
	}
	got, ok := vaultTime("2026-12-01T13:33:36.056487369Z")
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 12, 1, 13, 33, 36, 56487369, time.UTC), got)
	for _, v := range []any{nil, "", "soon", json.Number("1.5e"), json.Number("0"), 0, -5, true} {
		_, ok := vaultTime(v)
		require.False(t, ok, "%#v", v)
	}
}

// The policy grants exactly these paths with exactly these capabilities,
// for the default configuration and for another KV mount and prefix: a
// line added to it (another path, another capability, a ledger) fails
// here, so a change to what a stolen sweeper identity could do is always a
// reviewed change to this test.
func TestSweeperPolicyHCLGrantsOnlyTheSweep(t *testing.T) {
	for _, tc := range []struct {
		cfg        Config
		kv, prefix string
	}{
		{Config{}, "secret", "joinery/joiners"},
		{Config{KVMount: "kv2", PathPrefix: "corp/people"}, "kv2", "corp/people"},
	} {
		hcl := SweeperPolicyHCL(tc.cfg)
		stanza := regexp.MustCompile(`(?m)^path "([^"]*)" \{\n  capabilities = \[([^\]]*)\]\n\}`)
		got := map[string]string{}
		for _, m := range stanza.FindAllStringSubmatch(hcl, -1) {
			got[m[1]] = m[2]
		}
		require.Equal(t, map[string]string{
			"auth/token/accessors":       `"list", "sudo"`,
			"auth/token/lookup-accessor": `"update"`,
			"auth/token/revoke-accessor": `"update"`,
			tc.kv + "/data/" + tc.prefix + "/+/initial-credential-handovers-index": `"read"`,
			tc.kv + "/data/" + tc.prefix + "/+/secret-id-handovers-index":          `"read"`,
			"auth/token/renew-self":  `"update"`,
			"auth/token/lookup-self": `"read"`,
		}, got)
		// Nothing outside those stanzas but comments and blank lines.
		rest := stanza.ReplaceAllString(hcl, "")
		for _, line := range strings.Split(rest, "\n") {
			line = strings.TrimSpace(line)
			require.True(t, line == "" || strings.HasPrefix(line, "#"), "unexpected policy line %q", line)
		}
		// The index paths are the ones the client reads.
		c := offlineClient(t, tc.cfg)
		cred := c.kvPath("data", HandoverIndexPath(CredentialLedgerPath(c.JoinerPath("200", InitialCredentialName))))
		wl := c.kvPath("data", HandoverIndexPath(c.WorkloadLedgerPath(WorkloadRolePrefix+"x")))
		require.Equal(t, tc.kv+"/data/"+tc.prefix+"/200/initial-credential-handovers-index", cred)
		require.Equal(t, tc.kv+"/data/"+tc.prefix+"/"+WorkloadRolePrefix+"x/secret-id-handovers-index", wl)
	}
}

// HandoverIndex names the path from the token's kind and key alone and
// refuses, before any request, whatever is not one of Joinery's: a caller
// handing it a forged WrapToken cannot make it read another path.
func TestHandoverIndexRefusesBadTokensBeforeVault(t *testing.T) {
	c := offlineClient(t, Config{})
	for name, wt := range map[string]WrapToken{
		"unknown kind":             {Kind: "other", Key: "200"},
		"empty kind":               {Key: "200"},
		"empty key":                {Kind: WrapCredential},
		"traversal":                {Kind: WrapCredential, Key: ".."},
		"slash":                    {Kind: WrapCredential, Key: "200/../201"},
		"workload outside prefix":  {Kind: WrapWorkload, Key: "joinery-worker"},
		"workload of prefix alone": {Kind: WrapWorkload, Key: WorkloadRolePrefix},
	} {
		_, err := c.HandoverIndex(context.Background(), wt)
		var ce *connectors.Error
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, TypeInvalidRequest, ce.Type, name)
	}
	for _, p := range []string{"", "a/../b", "a//b"} {
		err := c.IndexHandovers(context.Background(), p)
		var ce *connectors.Error
		require.ErrorAs(t, err, &ce, p)
		require.Equal(t, TypeInvalidRequest, ce.Type, p)
	}
	require.Equal(t, "a/b-handovers-index", HandoverIndexPath("a/b-handovers"))
}

func TestSweepRefusesBadInputBeforeVault(t *testing.T) {
	c := offlineClient(t, Config{})
	ctx := context.Background()
	for _, acc := range []string{"", ".", "..", "a/b", "acc ", "acc\n", "*", strings.Repeat("a", maxAccessorLen+1)} {
		_, ok, err := c.LookupWrapToken(ctx, acc)
		require.False(t, ok)
		var ce *connectors.Error
		require.ErrorAs(t, err, &ce, "accessor %q", acc)
		require.Equal(t, TypeInvalidRequest, ce.Type, "accessor %q: %v", acc, err)
		require.False(t, ce.Retryable)
	}
	_, err := c.WrappingTokens(ctx, 0, nil)
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, TypeInvalidRequest, ce.Type)

	// A well-formed accessor does reach Vault: here an unreachable one,
	// which is worth retrying.
	_, _, err = c.LookupWrapToken(ctx, "4KsHfS5lX0Ulc3ULoPYZgFJ3")
	require.ErrorAs(t, err, &ce)
	require.Equal(t, TypeUnavailable, ce.Type)
	require.True(t, ce.Retryable)
	_, err = c.WrappingTokens(ctx, 0, func(WrapToken) error { return nil })
	require.ErrorAs(t, err, &ce)
	require.Equal(t, TypeUnavailable, ce.Type)
	require.True(t, ce.Retryable)
}

// fakeTokenVault answers the sweep's three calls: the accessor list,
// lookup-accessor (403 for the accessors in gone, a plain token's metadata
// otherwise) and lookup-self (403 when selfDenied).
func fakeTokenVault(t *testing.T, accessors []string, gone map[string]bool, selfDenied bool) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		denied := func() {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
		}
		switch r.URL.Path {
		case "/v1/auth/token/accessors":
			b, _ := json.Marshal(map[string]any{"data": map[string]any{"keys": accessors}})
			_, _ = w.Write(b)
		case "/v1/auth/token/lookup-accessor":
			var in struct{ Accessor string }
			_ = json.NewDecoder(r.Body).Decode(&in)
			if gone[in.Accessor] {
				denied()
				return
			}
			b, _ := json.Marshal(map[string]any{"data": map[string]any{"accessor": in.Accessor, "policies": []string{"default"}}})
			_, _ = w.Write(b)
		case "/v1/auth/token/lookup-self":
			if selfDenied {
				denied()
				return
			}
			_, _ = w.Write([]byte(`{"data":{"policies":["joinery-sweeper"]}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(context.Background(), Config{Addr: srv.URL, Token: "sweeper"})
	require.NoError(t, err)
	return c
}

// Vault answers 403 for an accessor whose token is gone while its accessor
// is still listed (seen in the reliability suite): the walk skips that one
// token and goes on, provided the sweeper's own token works. A walk whose
// every lookup is refused, or whose own token is refused, is an identity
// that cannot sweep: a permanent error, never an empty sweep.
func TestWrappingTokensSkipsAGoneTokenButNotABrokenIdentity(t *testing.T) {
	ctx := context.Background()
	accs := []string{"4KsHfS5lX0Ulc3ULoPYZgFJ1", "4KsHfS5lX0Ulc3ULoPYZgFJ2", "4KsHfS5lX0Ulc3ULoPYZgFJ3"}
	seen := 0
	more, err := fakeTokenVault(t, accs, map[string]bool{accs[1]: true}, false).WrappingTokens(ctx, 0, func(WrapToken) error { seen++; return nil })
	require.NoError(t, err, "one gone token does not stop the walk")
	require.False(t, more)
	require.Zero(t, seen, "plain tokens are not wrapping tokens")

	all := map[string]bool{accs[0]: true, accs[1]: true, accs[2]: true}
	_, err = fakeTokenVault(t, accs, all, false).WrappingTokens(ctx, 0, func(WrapToken) error { return nil })
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce, "every lookup refused")
	require.Equal(t, TypePermissionDenied, ce.Type)
	require.False(t, ce.Retryable)

	_, err = fakeTokenVault(t, accs, map[string]bool{accs[1]: true}, true).WrappingTokens(ctx, 0, func(WrapToken) error { return nil })
	require.ErrorAs(t, err, &ce, "the sweeper's own token refused")
	require.Equal(t, TypePermissionDenied, ce.Type)
}
