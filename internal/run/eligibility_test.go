package run

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
)

func TestEligibilityRulesFromThePolicy(t *testing.T) {
	cfg := config.Config{HRISURL: "http://127.0.0.1:1", HRISCompany: "joinery", HRISAPIKey: "k", PolicyFile: "../../testdata/policy/default.yaml"}
	e, err := eligibilityFor(cfg)
	require.NoError(t, err)
	require.Equal(t, []string{"customAccessStatus", "customUsername", "workEmail"}, e.rules.OwnedFields)
	in, err := IntakePolicy(cfg)
	require.NoError(t, err)
	require.Equal(t, 50, in.BlastRadius.MaxStarts)

	// Without the file (a CLI run elsewhere) the strictest rules decide, and
	// the intake's guard fails closed.
	cfg.PolicyFile = t.TempDir() + "/missing.yaml"
	e, err = eligibilityFor(cfg)
	require.NoError(t, err)
	require.Equal(t, strictRules, e.rules)
	_, err = IntakePolicy(cfg)
	require.Error(t, err)
}

func TestCollapsesOnExisting(t *testing.T) {
	for reason, want := range map[string]bool{
		activities.ReasonAlreadyProvisioned: true, activities.ReasonHireDatePassed: true,
		activities.ReasonInactive: false, activities.ReasonKindMismatch: false, activities.ReasonRehire: false,
	} {
		require.Equal(t, want, CollapsesOnExisting(&activities.IneligibleError{Reason: reason}), reason)
	}
	require.False(t, CollapsesOnExisting(errors.New("temporal down")))
}
