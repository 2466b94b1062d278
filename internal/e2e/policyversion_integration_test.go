package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/workflows"
)

// swappable lets a test change the worker's policy while joiners run, as an
// operator would by deploying a new policy file.
type swappable struct {
	mu sync.Mutex
	p  activities.Planner
}

func (s *swappable) Plan(w policy.Worker) (policy.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Plan(w)
}

func (s *swappable) set(p activities.Planner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p = p
}

// A running joiner keeps the policy version it started under when the policy
// changes; a joiner started afterwards gets the new one.
func TestRunningJoinerKeepsItsPolicyVersion(t *testing.T) {
	h := NewHarness(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(repo, "testdata", "policy", "default.yaml"))
	require.NoError(t, err)
	v1, err := policy.Parse(data)
	require.NoError(t, err)
	// The new policy stops granting vpn-users to employees.
	changed := strings.Replace(string(data), "label: default", "label: default-no-vpn", 1)
	changed = strings.Replace(changed, `    when: worker.kind == "employee"`, `    when: "false"`, 1)
	v2, err := policy.Parse([]byte(changed))
	require.NoError(t, err)
	require.NotEqual(t, v1.Version, v2.Version)
	sw := &swappable{p: v1}
	h.Acts.Policy = sw

	first := h.Hire("Ada", "Byron")
	h.Start(first)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, first)
		return err == nil && st.Stage == workflows.StageAwaitingApproval
	}, time.Minute, 100*time.Millisecond)
	sw.set(v2) // the policy changes while the first joiner waits for approval
	h.ApproveWhenAsked(first)
	res, err := h.Result(first)
	require.NoError(t, err)
	require.Equal(t, v1.Version, res.PolicyVersion, "the running joiner keeps the version it started under")
	require.Contains(t, res.Groups, "vpn-users")

	second := h.Hire("Ada", "Byron")
	h.Start(second)
	h.ApproveWhenAsked(second)
	res2, err := h.Result(second)
	require.NoError(t, err)
	require.Equal(t, v2.Version, res2.PolicyVersion)
	require.NotContains(t, res2.Groups, "vpn-users")
}
