package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/policy"
)

// ErrTypeNoPseudonymKey is the error type of SearchPseudonyms on a worker
// without JOINERY_PSEUDONYM_KEY (the worker refuses to start without it, so
// only a hand-built Activities meets it).
const ErrTypeNoPseudonymKey = "NoPseudonymKey"

// maxPseudonyms bounds one request: a plan names at most an approver, its
// delegates, a second approver, an escalation target and an owner.
const maxPseudonyms = 20

// PseudonymsInput asks for the search-attribute stand-ins of the people a
// joiner's plan names.
type PseudonymsInput struct {
	// Key is the joiner asking (its HRIS ID or non-human key).
	Key string `json:"key"`
	// Usernames are the people: approver, delegates, second approver,
	// escalation target, owner.
	Usernames []string `json:"usernames"`
	// Request and Kind are a non-human joiner's request, re-planned for
	// the order check (its sponsor re-resolved); nil for a person.
	Request *NonHumanRequest `json:"request,omitempty"`
	Kind    string           `json:"kind,omitempty"`
}

// SearchPseudonyms returns, for each username, the keyed pseudonym the
// joiner puts in its JoinerManager, JoinerDeciders and JoinerDecidedBy
// search attributes instead of the name (internal/pseudonym), keyed by the
// lower-cased username. The key never leaves the worker; the workflow sees
// only the results.
//
// Adversary: any Temporal client that runs a workflow of its own on
// Joinery's task queue. Answering it for names of its choosing would be an
// oracle that turns the pseudonyms back into people (compute ada.lovelace's
// pseudonym, then search for it). So the order check applies: the caller
// must be the Joiner for in.Key, and every name must be one its
// authoritative plan names as a decider — which is what that joiner's own
// search attributes already show to anyone who can read them.
func (a *Activities) SearchPseudonyms(ctx context.Context, in PseudonymsInput) (map[string]string, error) {
	o, err := a.admit(ctx, "search-pseudonyms", in.Key, fmt.Sprintf("pseudonyms of %d people", len(in.Usernames)))
	if err != nil {
		return nil, err
	}
	if len(in.Usernames) > maxPseudonyms {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("at most %d people per request, got %d", maxPseudonyms, len(in.Usernames)), ErrTypeInvalidJoiner, nil)
	}
	if _, _, err := a.verify(ctx, o, in.Request, in.Kind, func(p planned) string {
		named := PlanPeople(p.plan)
		for _, u := range in.Usernames {
			if !slices.Contains(named, strings.ToLower(strings.TrimSpace(u))) {
				return fmt.Sprintf("%q is not a decider in the joiner's plan", clipName(u))
			}
		}
		return ""
	}); err != nil {
		return nil, err
	}
	if a.Pseudonyms == nil {
		return nil, temporal.NewNonRetryableApplicationError("the worker has no pseudonym key (JOINERY_PSEUDONYM_KEY)", ErrTypeNoPseudonymKey, nil)
	}
	out := make(map[string]string, len(in.Usernames))
	for _, u := range in.Usernames {
		if k := strings.ToLower(strings.TrimSpace(u)); k != "" {
			out[k] = a.Pseudonyms.Of(k)
		}
	}
	return out, nil
}

// PlanPeople lists, lower-cased and without duplicates, everyone a plan
// names as someone who may decide on the joiner: the approver, the
// delegates, the second approver, the escalation target and the owner
// (sponsor or manager, who may extend time-bound access).
func PlanPeople(p policy.Plan) []string {
	var out []string
	ap := p.Approval
	for _, n := range append(append([]string{ap.Approver}, ap.Delegates...), ap.SecondApprover, ap.EscalateTo, p.Owner) {
		n = strings.ToLower(strings.TrimSpace(n))
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
