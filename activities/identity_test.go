package activities_test

// The order checks duplicate a few of the workflows package's identities
// (activities cannot import workflows; this external test package can).
// If one of them changes there, the checks would refuse every real joiner,
// or accept the wrong one: this test fails first.

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/workflows"
)

func TestOrderChecksKnowTheJoinersIdentity(t *testing.T) {
	require.Equal(t, workflows.JoinerWorkflowID("200"), activities.JoinerWorkflowID("200"))
	key := workflows.NonHumanKey("deploy-bot", "staging")
	require.Equal(t, workflows.JoinerWorkflowID(key), activities.JoinerWorkflowID(key))
	require.True(t, strings.HasPrefix(key, "nhi-"), "non-human keys are told apart by their prefix")
	require.Equal(t, "nhi-deploy-bot-staging", key)

	// The worker registers workflows.Joiner under its function name.
	name := runtime.FuncForPC(reflect.ValueOf(workflows.Joiner).Pointer()).Name()
	require.Equal(t, activities.JoinerWorkflowType, name[strings.LastIndex(name, ".")+1:])

	// The end of time-bound access writes these to this field.
	require.Equal(t, "customAccessStatus", workflows.AccessStatusField)
	for _, o := range []string{workflows.OutcomeExpired, workflows.OutcomeRevoked, workflows.OutcomeRescinded, workflows.OutcomeFailed} {
		require.Contains(t, []string{"expired", "revoked", "rescinded", "failed"}, o)
	}
}
