package policy

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseIntakeDefaultPolicy(t *testing.T) {
	in, err := LoadIntake("../../testdata/policy/default.yaml")
	require.NoError(t, err)
	require.Equal(t, 0, in.MaxDaysSinceHire)
	require.Equal(t, &BlastRadius{Window: time.Hour, MaxStarts: 50, MaxRescinds: 10, MaxHeld: 2000}, in.BlastRadius)
	require.Equal(t, []string{"customAccessStatus", "customUsername", "workEmail"}, in.WriteBack)
	// The whole policy still loads with the section in it.
	_, err = Load("../../testdata/policy/default.yaml")
	require.NoError(t, err)
}

func TestParseIntakeProblems(t *testing.T) {
	base, err := os.ReadFile("../../testdata/policy/default.yaml")
	require.NoError(t, err)
	head, _, _ := strings.Cut(string(base), "\nintake:")
	for _, tc := range []struct{ section, want string }{
		{"intake:\n  max_days_since_hire: -1\n", "intake.max_days_since_hire: -1 is outside 0..365"},
		{"intake:\n  blast_radius:\n    max_starts: 5\n    max_rescinds: 5\n", "intake.blast_radius.window: required"},
		{"intake:\n  blast_radius:\n    window: 10s\n    max_starts: 5\n    max_rescinds: 5\n", "intake.blast_radius.window: 10s is outside"},
		{"intake:\n  blast_radius:\n    window: 1h\n    max_rescinds: 5\n", "intake.blast_radius.max_starts: required"},
		{"intake:\n  blast_radius:\n    window: 1h\n    max_starts: 5\n    max_rescinds: 5\n    max_held: 0\n", "intake.blast_radius.max_held: 0 is outside 1..5000"},
		{"intake:\n  blast_radius:\n    window: 1h\n    max_start: 5\n", `unknown field "max_start"; did you mean "max_starts"?`},
	} {
		_, err := ParseIntake([]byte(head + "\n" + tc.section))
		require.ErrorContains(t, err, tc.want, tc.section)
	}
	// No section: grace 0, no guard.
	in, err := ParseIntake([]byte(head))
	require.NoError(t, err)
	require.Nil(t, in.BlastRadius)
	require.Zero(t, in.MaxDaysSinceHire)
}
