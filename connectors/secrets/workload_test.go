package secrets

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

var defaultTemplates = map[string][]GrantTemplate{
	"pipeline": {
		{Path: "secret/data/workloads/{firstName}/{environment}/*", Capabilities: []string{"read"}},
		{Path: "secret/metadata/workloads/{firstName}/{environment}/*", Capabilities: []string{"list"}},
	},
}

func TestWorkloadCatalogueBindsExactlyThePlansGrants(t *testing.T) {
	cat, err := WorkloadCatalogueFor(defaultTemplates)
	require.NoError(t, err)
	require.Equal(t, []string{"joinery-workload-pipeline"}, cat.Names())
	p := cat.Policies[0]

	md, err := p.bind([]GrantTemplate{
		{Path: "secret/data/workloads/deploy-bot/production/*", Capabilities: []string{"read"}},
		{Path: "secret/metadata/workloads/deploy-bot/production/*", Capabilities: []string{"list"}},
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"joinery_slot_0": "deploy-bot/production/*", "joinery_slot_1": "deploy-bot/production/*"}, md)
	require.Equal(t, `# joinery-workload-pipeline for this workload
path "secret/data/workloads/deploy-bot/production/*" {
  capabilities = ["read"]
}
path "secret/metadata/workloads/deploy-bot/production/*" {
  capabilities = ["list"]
}
`, effectiveHCL(p, md))

	hcl := p.HCL("auth_approle_1234")
	require.Contains(t, hcl, `path "secret/data/workloads/{{identity.entity.aliases.auth_approle_1234.metadata.joinery_slot_0}}" {`)
	require.Contains(t, hcl, `path "secret/metadata/workloads/{{identity.entity.aliases.auth_approle_1234.metadata.joinery_slot_1}}" {`)

	// Anything the templates do not yield is refused, never widened.
	for name, grants := range map[string][]GrantTemplate{
		"another mount":      {{Path: "secret/data/joinery/joiners/200/*", Capabilities: []string{"read"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}},
		"more capabilities":  {{Path: "secret/data/workloads/x/y/*", Capabilities: []string{"read", "update"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}},
		"sudo":               {{Path: "secret/data/workloads/x/y/*", Capabilities: []string{"sudo"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}},
		"an extra path":      {{Path: "secret/data/workloads/x/y/*", Capabilities: []string{"read"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}, {Path: "sys/mounts", Capabilities: []string{"read"}}},
		"a missing path":     {{Path: "secret/data/workloads/x/y/*", Capabilities: []string{"read"}}},
		"escape with ..":     {{Path: "secret/data/workloads/../../joinery/*", Capabilities: []string{"read"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}},
		"glob in the middle": {{Path: "secret/data/workloads/*/y", Capabilities: []string{"read"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}},
		"empty value":        {{Path: "secret/data/workloads/", Capabilities: []string{"read"}}, {Path: "secret/metadata/workloads/x/y/*", Capabilities: []string{"list"}}},
	} {
		_, err := p.bind(grants)
		require.Error(t, err, name)
	}
}

func TestWorkloadCatalogueRefusesUnboundedTemplates(t *testing.T) {
	for name, tmpl := range map[string]GrantTemplate{
		"placeholder in the mount":    {Path: "{environment}/data/x/*", Capabilities: []string{"read"}},
		"whole KV data":               {Path: "secret/data/{firstName}/*", Capabilities: []string{"read"}},
		"sys":                         {Path: "sys/policies/acl/{firstName}", Capabilities: []string{"read"}},
		"auth":                        {Path: "auth/token/create/{firstName}", Capabilities: []string{"update"}},
		"identity":                    {Path: "identity/entity/name/{firstName}", Capabilities: []string{"update"}},
		"sudo":                        {Path: "secret/data/workloads/{firstName}", Capabilities: []string{"sudo"}},
		"deny is not for the catalog": {Path: "secret/data/workloads/{firstName}", Capabilities: []string{"deny"}},
		"no capabilities":             {Path: "secret/data/workloads/{firstName}", Capabilities: nil},
		"quote":                       {Path: `secret/data/work"loads/{firstName}`, Capabilities: []string{"read"}},
		// Joinery's own tree: ledgers hold live tokens, indexes steer the sweeper.
		"joinery tree":           {Path: "secret/data/joinery/joiners/{firstName}", Capabilities: []string{"read"}},
		"joinery tree literal":   {Path: "secret/metadata/joinery/joiners/x/initial-credential-handovers-index", Capabilities: []string{"delete"}},
		"joinery tree by +":      {Path: "secret/data/+/joiners/*", Capabilities: []string{"read"}},
		"joinery tree by glob":   {Path: "secret/data/jo*", Capabilities: []string{"read"}},
		"joinery tree by prefix": {Path: "secret/data/j{firstName}", Capabilities: []string{"read"}},
		"whole mount":            {Path: "secret/*", Capabilities: []string{"read"}},
	} {
		_, err := WorkloadCatalogueFor(map[string][]GrantTemplate{"k": {tmpl}})
		require.Error(t, err, name)
	}
	cat, err := WorkloadCatalogueFor(map[string][]GrantTemplate{"k": {{Path: "database/creds/workload-{firstName}", Capabilities: []string{"read"}},
		{Path: "secret/data/shared/readme", Capabilities: []string{"read"}}, {Path: "secret/data/joinery-docs/readme", Capabilities: []string{"read"}}}})
	require.NoError(t, err, "a partial third segment bounds the worker too; a literal path is fixed")
	require.Equal(t, WorkloadSlot{Prefix: "secret/data/shared/readme", Capabilities: []string{"read"}}, cat.Policies[0].Slots[1])
}

func TestWorkerPolicyListsWorkloadPoliciesByExactName(t *testing.T) {
	cat, err := WorkloadCatalogueFor(map[string][]GrantTemplate{"pipeline": defaultTemplates["pipeline"], "ai-agent": defaultTemplates["pipeline"]})
	require.NoError(t, err)
	hcl := WorkerPolicyHCL(Config{}, cat)
	require.Contains(t, hcl, `"token_policies"        = ["joinery-workload-ai-agent", "joinery-workload-pipeline"]`)
	for _, line := range strings.Split(hcl, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		require.NotContains(t, line, "revoke-accessor")
		require.NotContains(t, line, "sudo")
		require.NotContains(t, line, "joinery-workload-*", "a glob would accept \"joinery-workload-x,root\"")
		require.NotContains(t, line, "@", "every placeholder is replaced")
	}
	require.Contains(t, hcl, `path "sys/policies/acl/joinery-nhi-*" {
  capabilities = ["delete"]
}`)

	// No workload policies: no role management at all (an empty allowed
	// list would mean any value).
	empty := withoutComments(WorkerPolicyHCL(Config{}, WorkloadCatalogue{}))
	require.NotContains(t, empty, "auth/approle/role")
	require.NotContains(t, empty, "token_policies")
}

func withoutComments(hcl string) string {
	var out []string
	for _, line := range strings.Split(hcl, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestIssueWorkloadRefusesBeforeReachingVault(t *testing.T) {
	// Nothing listens here: every case must be refused before a request.
	c, err := New(context.Background(), Config{Addr: "http://127.0.0.1:1", Token: "t"})
	require.NoError(t, err)
	deliver := func(context.Context, string) error { return nil }
	ok := WorkloadRequest{Role: "joinery-nhi-x", Grants: []GrantTemplate{{Path: "secret/data/workloads/x/y/*", Capabilities: []string{"read"}}}, WrapTTL: time.Minute}
	for name, mutate := range map[string]func(r *WorkloadRequest){
		"role outside the prefix":      func(r *WorkloadRequest) { r.Role = "joinery-worker" },
		"role with a slash":            func(r *WorkloadRequest) { r.Role = "joinery-nhi-x/policies" },
		"token policies from a caller": func(r *WorkloadRequest) { r.Options.TokenPolicies = []string{"root"} },
		"no wrap TTL":                  func(r *WorkloadRequest) { r.WrapTTL = 0 },
	} {
		r := ok
		mutate(&r)
		_, err := c.IssueWorkload(context.Background(), r, deliver)
		var ce *connectors.Error
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, TypeInvalidRequest, ce.Type, name)
	}
	_, err = c.IssueWorkload(context.Background(), ok, nil)
	require.Error(t, err, "deliver is required")
}
