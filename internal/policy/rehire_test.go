package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func rehirePolicySrc(section string) string {
	return `label: t
groups: [g]
naming:
  patterns:
    - pattern: "{first}.{last}"
kinds:
  employee: {ou: people}
approval:
  routes:
    - {name: d, approver: grace.hopper, timeout: 1d}
credentials: {wrap_ttl: 1h}
` + section
}

// policyPaths returns the field path of every problem in err.
func policyPaths(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	var out []string
	for _, e := range Problems(err) {
		var pe *PolicyError
		if errors.As(e, &pe) {
			out = append(out, pe.Path)
		} else {
			out = append(out, e.Error())
		}
	}
	return out
}

func TestRehireSectionLoads(t *testing.T) {
	p := mustParse(t, rehirePolicySrc("rehire: {mode: reenable, max_gap: 365d}\n"))
	r, ok := p.Rehire()
	require.True(t, ok)
	require.Equal(t, RehirePolicy{Mode: RehireReenable, MaxGap: 365 * 24 * time.Hour}, r)

	// No section: rehires are not allowed, and say so.
	p = mustParse(t, rehirePolicySrc(""))
	_, ok = p.Rehire()
	require.False(t, ok)
	_, err := p.PlanRehire("joiner-1", "joiner-1~g2", "uid=a,ou=people,dc=x", "2025-01-31", "2026-01-05")
	require.ErrorContains(t, err, "no rehire section")

	// The shipped default policy still loads.
	loadDefault(t)
}

func TestRehireSectionRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		section, path, says string
	}{
		"unknown mode":      {"rehire: {mode: adopt, max_gap: 30d}\n", "rehire.mode", `"adopt"`},
		"replace not built": {"rehire: {mode: replace, max_gap: 30d}\n", "rehire.mode", "not implemented yet"},
		"no mode":           {"rehire: {max_gap: 30d}\n", "rehire.mode", "required"},
		"no max_gap":        {"rehire: {mode: reenable}\n", "rehire.max_gap", "required"},
		"bad duration":      {"rehire: {mode: reenable, max_gap: forever}\n", "rehire.max_gap", "invalid duration"},
		"gap too short":     {"rehire: {mode: reenable, max_gap: 1h}\n", "rehire.max_gap", "outside"},
		"gap too long":      {"rehire: {mode: reenable, max_gap: 4000d}\n", "rehire.max_gap", "outside"},
		"unknown key":       {"rehire: {mode: reenable, max_gap: 30d, adopt_anyone: true}\n", "rehire.adopt_anyone", ""},
		"not a mapping":     {"rehire: reenable\n", "rehire", ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(rehirePolicySrc(tc.section)))
			require.Error(t, err, "a policy with a bad rehire section must not load")
			require.Contains(t, strings.Join(policyPaths(t, err), " "), tc.path, "%v", err)
			if tc.says != "" {
				require.ErrorContains(t, err, tc.says)
			}
		})
	}
}

func TestPlanRehire(t *testing.T) {
	p := mustParse(t, rehirePolicySrc("rehire: {mode: reenable, max_gap: 365d}\n"))
	dn := "uid=re.hire,ou=people,dc=joinery,dc=test"
	got, err := p.PlanRehire("joiner-7", "joiner-7~g2", dn, "2025-06-30", "2026-03-01")
	require.NoError(t, err)
	require.Equal(t, RehirePlan{PreviousJoiner: "joiner-7", Joiner: "joiner-7~g2", DN: dn, LeftOn: "2025-06-30", Mode: RehireReenable}, got)

	for name, tc := range map[string]struct{ prev, gen, dn, left, hire, says string }{
		"gap too long":    {"joiner-7", "joiner-7~g2", dn, "2024-01-01", "2026-03-01", "more than rehire.max_gap"},
		"hire before end": {"joiner-7", "joiner-7~g2", dn, "2026-03-01", "2026-03-01", "not a rehire"},
		"bad left date":   {"joiner-7", "joiner-7~g2", dn, "30.06.2025", "2026-03-01", "termination date"},
		"bad hire date":   {"joiner-7", "joiner-7~g2", dn, "2025-06-30", "", "hire date"},
		"same generation": {"joiner-7", "joiner-7", dn, "2025-06-30", "2026-03-01", "new generation"},
		"no entry":        {"joiner-7", "joiner-7~g2", "", "2025-06-30", "2026-03-01", "the entry"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.PlanRehire(tc.prev, tc.gen, tc.dn, tc.left, tc.hire)
			require.ErrorContains(t, err, tc.says)
		})
	}
}

// A plan without a rehire hashes as before (no "rehire" key); one with it
// names the entry, so an approval signed for another entry does not match.
func TestPlanRehireIsInThePlanJSON(t *testing.T) {
	b, err := json.Marshal(Plan{Kind: KindEmployee})
	require.NoError(t, err)
	require.NotContains(t, string(b), "rehire")
	b, err = json.Marshal(Plan{Kind: KindEmployee, Rehire: &RehirePlan{PreviousJoiner: "joiner-7", DN: "uid=x"}})
	require.NoError(t, err)
	require.Contains(t, string(b), `"rehire":{"previousJoiner":"joiner-7"`)
}
