package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/policy"
)

const policyTestdata = "../testdata/policy"

func runPolicy(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = policyCommand(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPolicyCheck(t *testing.T) {
	def := filepath.Join(policyTestdata, "default.yaml")
	p, err := policy.Load(def)
	require.NoError(t, err)

	code, out, errOut := runPolicy("check", def)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, def+": "+p.Version+" ok\n", out)

	bad := filepath.Join(policyTestdata, "invalid-unknown-group.yaml")
	code, out, errOut = runPolicy("check", bad)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, bad+`: birthright[2].group: unknown group "github-us"`)

	// Every problem is printed, one per line, and one bad file fails the run.
	multi := filepath.Join(t.TempDir(), "multi.yaml")
	require.NoError(t, os.WriteFile(multi, []byte("label: x\ngroups: [a]\nnaming: {patterns: [{pattern: '{frist}'}]}\n"), 0o600))
	code, out, errOut = runPolicy("check", def, multi)
	require.Equal(t, 1, code)
	require.Contains(t, out, "default.yaml: "+p.Version+" ok")
	require.GreaterOrEqual(t, strings.Count(errOut, multi+": "), 4, errOut)
	require.Contains(t, errOut, "naming.patterns[0].pattern: unknown placeholder {frist}")
	require.Contains(t, errOut, "kinds: required")
	require.Contains(t, errOut, "approval.routes: a default route is required")
	require.Contains(t, errOut, "credentials.wrap_ttl: required")

	code, _, errOut = runPolicy("check", filepath.Join(t.TempDir(), "missing.yaml"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no such file")
}

func TestPolicyPlanTable(t *testing.T) {
	def := filepath.Join(policyTestdata, "default.yaml")
	p, err := policy.Load(def)
	require.NoError(t, err)
	code, out, errOut := runPolicy("plan", def, filepath.Join(policyTestdata, "records", "jose-nunez.json"))
	require.Equal(t, 0, code, errOut)
	// Column widths depend on the longest cell; compare with runs of
	// spaces collapsed.
	out = strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"Policy " + p.Version,
		"employee (ou=people)",
		"2026-09-01 (provision on 2026-08-25, 7 days before)",
		"1 jose.nunez {first}.{last} naming.patterns[0]",
		"2 jnunez {f}{last} naming.patterns[1]",
		"3 jose.nunez2 {first}.{last}{n} naming.counters[0]",
		`github-eu github-eu birthright worker.kind in ["employee", "contractor"] && worker.department == "Engineering" && worker.location.startsWith("DE")`,
		"vpn-users vpn-users birthright worker.kind == \"employee\"",
		"mail {username}@joinery.test",
		"approver ada.lovelace",
		"escalate to grace.hopper after 72h",
		"timeout (reject) 7d",
		"reminder after 24h",
		"workEmail {username}@joinery.test",
		"Credential wrap TTL 72h",
	} {
		require.Contains(t, out, want)
	}
}

func TestPolicyPlanJSON(t *testing.T) {
	def := filepath.Join(policyTestdata, "default.yaml")
	rec := filepath.Join(policyTestdata, "records", "zoe-odegard-contractor.json")
	for _, args := range [][]string{{"plan", "--json", def, rec}, {"plan", def, rec, "-json"}} {
		code, out, errOut := runPolicy(args...)
		require.Equal(t, 0, code, errOut)
		var plan policy.Plan
		require.NoError(t, json.Unmarshal([]byte(out), &plan))
		require.Equal(t, "zoe.odegardlukasz", plan.Candidates[0])
		require.Equal(t, []string{"all-staff", "contractors"}, plan.GroupNames())
		require.Equal(t, []string{"finance-contractor"}, plan.Exceptions)
		require.Equal(t, "grace.hopper", plan.Approval.SecondApprover)
	}
}

func TestPolicyPlanErrors(t *testing.T) {
	def := filepath.Join(policyTestdata, "default.yaml")
	jose := filepath.Join(policyTestdata, "records", "jose-nunez.json")
	unknownField := filepath.Join(t.TempDir(), "typo.json")
	require.NoError(t, os.WriteFile(unknownField, []byte(`{"hrisId":"1","kind":"employee","fristName":"x"}`), 0o600))
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"invalid record", []string{"plan", def, filepath.Join(policyTestdata, "records", "invalid-contractor.json")}, 1, `hireDate: "2026-13-01" is not a date`},
		{"unknown record field", []string{"plan", def, unknownField}, 1, `unknown field "fristName"`},
		{"missing record", []string{"plan", def, filepath.Join(t.TempDir(), "nope.json")}, 1, "no such file"},
		{"invalid policy", []string{"plan", filepath.Join(policyTestdata, "invalid-cel-undeclared.yaml"), jose}, 1, "undeclared reference to 'worker.dept'"},
		{"one argument", []string{"plan", def}, 2, "expected FILE and RECORD"},
		{"three arguments", []string{"plan", def, jose, jose}, 2, "expected FILE and RECORD"},
		{"unknown flag", []string{"plan", "--yaml", def, jose}, 2, "flag provided but not defined"},
		{"check without files", []string{"check"}, 2, "expected one or more policy files"},
		{"no subcommand", nil, 2, "usage:"},
		{"unknown subcommand", []string{"lint"}, 2, `unknown subcommand "lint"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPolicy(tt.args...)
			require.Equal(t, tt.code, code, "stdout=%s stderr=%s", out, errOut)
			require.Contains(t, errOut, tt.err)
		})
	}
	code, out, _ := runPolicy("help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "starter policy plan")
}
