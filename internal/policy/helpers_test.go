package policy

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const policyDir = "../../testdata/policy"

func loadDefault(t testing.TB) *Policy {
	t.Helper()
	p, err := Load(filepath.Join(policyDir, "default.yaml"))
	require.NoError(t, err)
	return p
}

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	require.NoError(t, err, "policy:\n%s", src)
	return p
}

// namingPolicy wraps a naming section (already indented by two spaces) in a
// minimal valid policy whose only route needs no manager on record.
func namingPolicy(t testing.TB, naming string) *Policy {
	t.Helper()
	return mustParse(t, `label: t
groups: [g]
naming:
`+naming+`
kinds:
  employee: {ou: people}
  service-account: {ou: service-accounts, groups: []}
approval:
  routes:
    - {name: d, approver: grace.hopper, timeout: 1d}
credentials: {wrap_ttl: 1h}
`)
}

func employee(first, last string) Worker {
	return Worker{HRISID: "1", FirstName: first, LastName: last, Kind: KindEmployee}
}

// fields returns the sorted Field of every *ValidationError in err and
// fails if err holds anything else.
func fields(t testing.TB, err error) []string {
	t.Helper()
	require.Error(t, err)
	var out []string
	for _, e := range Problems(err) {
		var ve *ValidationError
		require.True(t, errors.As(e, &ve), "not a ValidationError: %v", e)
		out = append(out, ve.Field)
	}
	sort.Strings(out)
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
