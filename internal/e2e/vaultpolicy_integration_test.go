package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// The least-privilege policy docker-compose gives the worker
// (testdata/vault/joinery-worker.hcl) is enough for every Vault operation a
// joiner needs, and no more: a path outside Joinery's own is denied.
func TestWorkerVaultPolicyIsEnough(t *testing.T) {
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	hcl, err := os.ReadFile(filepath.Join(repo, "testdata", "vault", "joinery-worker.hcl"))
	require.NoError(t, err)
	root := vaultClient(t, ep.VaultAddr, ep.VaultToken)
	require.NoError(t, root.Sys().PutPolicy("joinery-worker", string(hcl)))
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"joinery-worker"}, TTL: "10m"})
	require.NoError(t, err)
	ctx := context.Background()
	sec, err := secrets.New(ctx, secrets.Config{Addr: ep.VaultAddr, Token: tok.Auth.ClientToken})
	require.NoError(t, err)
	key := fmt.Sprintf("it-wpol-%d", rand.IntN(1e6))

	var setPw, delivered string
	h, err := sec.IssueInitialCredential(ctx, key, map[string]string{"joiner": key}, time.Hour,
		func(_ context.Context, pw string) error { setPw = pw; return nil },
		func(_ context.Context, tok string) error { delivered = tok; return nil })
	require.NoError(t, err)
	require.NotEmpty(t, setPw)
	require.NotEmpty(t, delivered)
	_, found, err := sec.Metadata(ctx, h.Path)
	require.NoError(t, err)
	require.True(t, found)
	require.NoError(t, sec.RevokeInitialCredential(ctx, h.Path, h.WrapAccessor))

	acts := &activities.Activities{Workloads: sec, Handover: discardHandover{}}
	nhiKey := "nhi-" + key
	wl, err := acts.IssueWorkloadCredential(ctx, activities.WorkloadInput{Key: nhiKey, Username: "svc-x", Recipient: "ada.lovelace",
		Workload: policy.WorkloadPlan{Grants: []policy.VaultGrant{{Path: "secret/data/workloads/x/staging/*", Capabilities: []string{"read"}}},
			TokenTTL: time.Hour, TokenMaxTTL: time.Hour, SecretIDNumUses: 1, SecretIDTTL: time.Hour, WrapTTL: time.Hour}})
	require.NoError(t, err)
	require.NotEmpty(t, wl.RoleID)
	require.NoError(t, acts.RevokeWorkload(ctx, activities.RevokeWorkloadInput{Key: nhiKey, Accessor: wl.WrapAccessor}))

	// Nothing outside Joinery's subtree.
	_, err = sec.Put(ctx, "apps/other/secret", map[string]any{"x": "y"}, nil)
	require.Error(t, err)
	require.Error(t, sec.WritePolicy(ctx, "admin-"+key, `path "*" { capabilities = ["sudo"] }`), "the worker cannot write arbitrary policies")
}

type discardHandover struct{}

func (discardHandover) Deliver(context.Context, string, string, string) error { return nil }
