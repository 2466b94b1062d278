package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/metrics"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// TestHeldBurstShowsOnTheIntakesMetrics drives the real blast-radius hold
// workflow on the dev stack past its limit and scrapes the intake's
// metrics listener: what the guard holds is counted by action, aged, and
// never named.
func TestHeldBurstShowsOnTheIntakesMetrics(t *testing.T) {
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg, err := e2e.Config(ep, repo)
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("it-hold-metrics-%d", rand.IntN(1e9))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := run.Dial(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(c.Close)

	hold := intake.HoldFor(c, cfg)
	stop, err := hold.StartWorker()
	require.NoError(t, err)
	t.Cleanup(stop)
	require.NoError(t, hold.Ensure(ctx))
	t.Cleanup(func() {
		_, _ = hold.Discard(context.Background(), nil, true, "metrics-test", "test ended")
		_ = c.TerminateWorkflow(context.Background(), hold.ID, "", "test ended")
	})

	limits := workflows.HoldLimits{Window: time.Hour, MaxStarts: 1, MaxRescinds: 1, MaxHeld: 10}
	base := 900000 + rand.IntN(90000)
	var held []string
	for i := 0; i < 3; i++ {
		id := fmt.Sprint(base + i)
		a, err := hold.Admit(ctx, workflows.AdmitRequest{Item: workflows.HoldItem{Action: "start", HRISID: id, Source: "webhook",
			Input: &workflows.JoinerInput{HRISID: id, Source: "webhook"}}, Limits: limits})
		require.NoError(t, err)
		if a.Held {
			held = append(held, id)
		}
	}
	a, err := hold.Admit(ctx, workflows.AdmitRequest{Item: workflows.HoldItem{Action: "rescind", HRISID: fmt.Sprint(base + 9), Source: "webhook",
		Rescind: &workflows.RescindSignal{By: "metrics-test", Reason: "test", Via: "webhook"}}, Limits: limits})
	require.NoError(t, err)
	require.True(t, a.Admitted, "the first rescind fits its window")
	require.Len(t, held, 2, "one start fits the window, the rest are held")

	addr := freeAddr(t)
	_, err = metrics.ServeIntake(ctx, addr, slog.New(slog.NewTextHandler(io.Discard, nil)), hold, 200*time.Millisecond)
	require.NoError(t, err)
	var fams map[string]*dto.MetricFamily
	var body string
	require.Eventually(t, func() bool {
		fams, body = scrape(t, addr)
		m := value(fams[metrics.IntakeHeld], map[string]string{"action": "start"})
		return m != nil && m.GetGauge().GetValue() == 2
	}, 20*time.Second, 200*time.Millisecond, "joinery_intake_held{action=start} never reached 2")
	require.Equal(t, 0.0, value(fams[metrics.IntakeHeld], map[string]string{"action": "rescind"}).GetGauge().GetValue())
	require.Equal(t, 1.0, value(fams[metrics.IntakeHoldWindow], map[string]string{"action": "start"}).GetGauge().GetValue())
	require.Equal(t, 1.0, value(fams[metrics.IntakeHoldWindow], map[string]string{"action": "rescind"}).GetGauge().GetValue())
	require.Equal(t, 1.0, fams[metrics.IntakeHoldUp].GetMetric()[0].GetGauge().GetValue())
	age := fams[metrics.IntakeHeldOldestAge].GetMetric()[0].GetGauge().GetValue()
	require.Greater(t, age, 0.0)
	require.Less(t, age, 60.0)
	for _, id := range held {
		require.False(t, strings.Contains(body, `"`+id+`"`), "held HR ID %s as a label", id)
	}

	// An operator discards the burst: the gauge follows.
	_, err = hold.Discard(ctx, nil, true, "metrics-test", "not a real burst")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		fams, _ = scrape(t, addr)
		m := value(fams[metrics.IntakeHeld], map[string]string{"action": "start"})
		return m != nil && m.GetGauge().GetValue() == 0
	}, 20*time.Second, 200*time.Millisecond, "joinery_intake_held did not fall to 0 after the discard")
}
