package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

// The vocabulary is derived from the code: every workflow and activity a
// Joinery process registers is in it, and nothing else.
func TestJoineryVocabularyIsWhatJoineryRegisters(t *testing.T) {
	v := JoineryVocabulary()
	require.ElementsMatch(t, []string{"Joiner", "Reconciler", "Hold"}, v.WorkflowTypes)
	for _, a := range []string{"ClaimAccount", "GrantGroup", "IssueCredential", "WriteBack", "CheckEligible",
		"ReconcileListOrphans", "ReconcileRevokeOrphan", "SweepListWrappingTokens", "SweepRevokeWrappingTokens"} {
		require.Contains(t, v.ActivityTypes, a)
	}
	for _, a := range v.ActivityTypes {
		require.Regexp(t, `^[A-Z][A-Za-z0-9]*$`, a, "only exported method names")
	}
}

// sdkLike emits what the SDK emits for one workflow task and one activity
// task of the given types on queue, through h.
func sdkLike(h client.MetricsHandler, queue, wfType, actType string) {
	w := h.WithTags(map[string]string{"namespace": "default", "task_queue": queue}).
		WithTags(map[string]string{"workflow_type": wfType})
	w.Counter("temporal_workflow_task_execution_failed").Inc(1)
	w.Timer("temporal_workflow_task_schedule_to_start_latency").Record(10 * time.Millisecond)
	a := h.WithTags(map[string]string{"task_queue": queue, "activity_type": actType, "workflow_type": wfType})
	a.Counter("temporal_unregistered_activity_invocation").Inc(1)
	a.Timer("temporal_activity_schedule_to_start_latency").Record(time.Millisecond)
}

func scrapeText(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// Caller-chosen type names never become series through the handler the
// worker uses, and the number of series stops growing; the same flood
// through the SDK's handler unwrapped (the control) shows every name, so
// the check can tell.
func TestTemporalHandlerFoldsCallerChosenNames(t *testing.T) {
	wrapped := NewRegistry()
	h, err := wrapped.TemporalHandler()
	require.NoError(t, err)
	raw := NewRegistry()
	rh, err := raw.TemporalHandler()
	require.NoError(t, err)
	unwrapped := rh.(boundedHandler).Unwrap()

	series := func(text string) int {
		n := 0
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "temporal_") {
				n++
			}
		}
		return n
	}
	sdkLike(h, "joinery-joiners", "Joiner", "ClaimAccount")
	sdkLike(h, "joinery-joiners", "Rogue0", "Steal0")
	before := series(scrapeText(t, wrapped))
	for i := range 200 {
		sdkLike(h, "joinery-joiners", fmt.Sprintf("Rogue%d", i), fmt.Sprintf("Steal%d", i))
		sdkLike(unwrapped, "joinery-joiners", fmt.Sprintf("Rogue%d", i), fmt.Sprintf("Steal%d", i))
	}
	text := scrapeText(t, wrapped)
	require.Equal(t, before, series(text), "200 more random names add no series")
	require.NotContains(t, text, "Rogue")
	require.NotContains(t, text, "Steal")
	require.Contains(t, text, `workflow_type="Joiner"`)
	require.Contains(t, text, `activity_type="ClaimAccount"`)
	require.Contains(t, text, `workflow_type="other"`)
	require.Contains(t, text, `activity_type="other"`)

	control := scrapeText(t, raw)
	require.Contains(t, control, `workflow_type="Rogue199"`, "the control: unwrapped, the names do reach the scrape")
	require.Greater(t, series(control), 10*series(text))
	t.Logf("series after 200 random workflow and activity types: %d bounded, %d unbounded", series(text), series(control))
}

// Tags without a closed vocabulary keep at most maxTagValues values each,
// across every handler derived from the same root; the SDK's "none" and a
// Nexus name (Joinery registers no Nexus service) are handled too.
func TestBoundedHandlerCapsOpenTags(t *testing.T) {
	b := newBounds(Vocabulary{WorkflowTypes: []string{"Joiner"}})
	for i := range maxTagValues {
		require.Equal(t, fmt.Sprint("q", i), b.value("task_queue", fmt.Sprint("q", i)))
	}
	require.Equal(t, Other, b.value("task_queue", "one-too-many"))
	require.Equal(t, "q7", b.value("task_queue", "q7"), "a value seen before keeps its name")
	require.Equal(t, "none", b.value("workflow_type", "none"))
	require.Equal(t, "Joiner", b.value("workflow_type", "Joiner"))
	require.Equal(t, Other, b.value("workflow_type", "joiner"), "exact names only")
	require.Equal(t, Other, b.value("nexus_service", "rogue-service"))
	require.Equal(t, Other, b.value("activity_type", "ClaimAccount"), "not in this vocabulary")

	in := map[string]string{"workflow_type": "Evil", "task_queue": "q1"}
	out := b.clean(in)
	require.Equal(t, map[string]string{"workflow_type": Other, "task_queue": "q1"}, out)
	require.Equal(t, "Evil", in["workflow_type"], "the caller's map is not changed")
}
