package metrics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/metrics"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// rogueScheduler is the rogue's own workflow, run by the rogue's own worker
// on its own queue: it schedules activities of the names it is given on
// the victim's queue, once each.
func rogueScheduler(ctx workflow.Context, queue string, names []string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: queue, StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var fs []workflow.Future
	for _, n := range names {
		fs = append(fs, workflow.ExecuteActivity(ctx, n))
	}
	for _, f := range fs {
		_ = f.Get(ctx, nil) // each fails: nothing is registered under the name
	}
	return nil
}

// seriesOf reads a scrape: every series name with its labels, and the
// values each label takes.
func seriesOf(t *testing.T, body string) (n int, values map[string]map[string]bool) {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	values = map[string]map[string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			n++
			if f.GetType() == dto.MetricType_HISTOGRAM {
				n += len(m.GetHistogram().GetBucket()) + 1 // what Prometheus stores: buckets, _sum, _count
			}
			for _, lp := range m.GetLabel() {
				if values[lp.GetName()] == nil {
					values[lp.GetName()] = map[string]bool{}
				}
				values[lp.GetName()][lp.GetValue()] = true
			}
		}
	}
	return n, values
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The adversary: anyone with Temporal access (an operator's credentials, a
// leaked client certificate, a service beside Joinery on the namespace).
// They start 200 workflows of random types on the worker's queue and, from
// a worker of their own, schedule 40 activities of random names on it. The
// worker polls every one of those tasks and fails it; on the dev stack's
// Temporal, its /metrics must not name a single one of those types, the
// series must stay within a fixed bound of what Joinery's own traffic
// makes, and Joinery's own type names must still be there.
func TestRandomWorkflowAndActivityTypesDoNotGrowTheWorkersSeries(t *testing.T) {
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg, err := e2e.Config(ep, repo)
	require.NoError(t, err)
	queue := fmt.Sprintf("it-rogue-metrics-%d", rand.IntN(1e9))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)

	// The worker under attack, with the worker's metrics as run.Worker
	// builds them (the SDK's handler and the step interceptor), hosting a
	// workflow of Joinery's (the hold: it needs no connectors).
	reg := metrics.NewRegistry()
	th, err := reg.TemporalHandler()
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	steps, err := metrics.NewSteps(reg.Registerer())
	require.NoError(t, err)
	c, err := run.DialWithMetrics(ctx, cfg, nil, th)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := worker.New(c, queue, worker.Options{Interceptors: []interceptor.WorkerInterceptor{steps}})
	w.RegisterWorkflow(workflows.Hold)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	scrapeNow := func() string {
		rec := httptest.NewRecorder()
		reg.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metrics.Path, nil))
		require.Equal(t, http.StatusOK, rec.Code)
		return rec.Body.String()
	}

	// The rogue's client has no metrics: what is measured is the worker.
	rc, err := run.Dial(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Close)
	var started []string
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range started {
			_ = rc.TerminateWorkflow(context.Background(), id, "", "test over")
		}
	})
	start := func(id, wfType string, wf any, args ...any) {
		_, err := rc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue,
			WorkflowExecutionTimeout: 2 * time.Minute}, wf, args...)
		require.NoError(t, err, wfType)
		mu.Lock()
		started = append(started, id)
		mu.Unlock()
	}

	// Joinery's own traffic first: a hold answers a query (workflow tasks
	// of type Hold), and the baseline is what the scrape has then.
	holdID := queue + "-hold"
	start(holdID, "Hold", workflows.Hold, workflows.HoldState{})
	require.Eventually(t, func() bool {
		_, err := c.QueryWorkflow(ctx, holdID, "", workflows.QueryHold)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond)
	// One rogue of each kind, so that the "other" series exist in the
	// baseline and what follows can only add more of the same.
	rogueQueue := queue + "-rogue"
	rw := worker.New(rc, rogueQueue, worker.Options{})
	rw.RegisterWorkflowWithOptions(rogueScheduler, workflow.RegisterOptions{Name: "RogueScheduler"})
	require.NoError(t, rw.Start())
	t.Cleanup(rw.Stop)
	rogue := func(i int) (string, string) {
		return fmt.Sprintf("RogueType%06d%x", i, rand.Uint32()), fmt.Sprintf("StealSecrets%06d%x", i, rand.Uint32())
	}
	flood := func(from, to int) {
		var acts []string
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wt, at := rogue(i)
			acts = append(acts, at, at+"x")
			wg.Add(1)
			go func() {
				defer wg.Done()
				start(fmt.Sprintf("%s-rogue-%d", queue, i), wt, wt)
			}()
		}
		wg.Wait()
		id := fmt.Sprintf("%s-scheduler-%d", queue, from)
		_, err := rc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: rogueQueue,
			WorkflowExecutionTimeout: 2 * time.Minute}, "RogueScheduler", queue, acts)
		require.NoError(t, err)
		mu.Lock()
		started = append(started, id)
		mu.Unlock()
	}
	// counted is how many rogue workflow tasks and activity tasks the
	// worker has failed so far, as its own metrics say.
	counted := func(body string) (wfTasks, acts float64) {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
		require.NoError(t, err)
		for _, m := range fams["temporal_workflow_task_execution_failed_total"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "workflow_type" && lp.GetValue() == metrics.Other {
					wfTasks += m.GetCounter().GetValue()
				}
			}
		}
		for _, m := range fams["temporal_unregistered_activity_invocation_total"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "activity_type" && lp.GetValue() == metrics.Other {
					acts += m.GetCounter().GetValue()
				}
			}
		}
		return wfTasks, acts
	}
	flood(0, 1)
	require.Eventually(t, func() bool {
		wf, acts := counted(scrapeNow())
		return wf >= 1 && acts >= 2
	}, 60*time.Second, 250*time.Millisecond, "the worker never failed the first rogue tasks")
	baseline := scrapeNow()
	before, _ := seriesOf(t, baseline)

	// The flood: 199 more workflow types and 398 more activity names.
	flood(1, 200)
	require.Eventually(t, func() bool {
		wf, acts := counted(scrapeNow())
		return wf >= 200 && acts >= 400
	}, 90*time.Second, 500*time.Millisecond, "the worker never saw the whole flood")
	body := scrapeNow()
	after, values := seriesOf(t, body)
	t.Logf("series in the worker's scrape: %d before the flood, %d after 200 random workflow types and 400 random activity names; workflow_type values %v",
		before, after, keys(values["workflow_type"]))

	require.NotContains(t, body, "RogueType", "a caller-chosen workflow type in the worker's metrics")
	require.NotContains(t, body, "StealSecrets", "a caller-chosen activity name in the worker's metrics")
	allowed := map[string]bool{metrics.Other: true, "none": true}
	v := metrics.JoineryVocabulary()
	for _, n := range append(v.WorkflowTypes, v.ActivityTypes...) {
		allowed[n] = true
	}
	for _, label := range []string{"workflow_type", "activity_type", "step"} {
		for val := range values[label] {
			require.True(t, allowed[val], "%s=%q is not in Joinery's vocabulary", label, val)
		}
	}
	require.True(t, values["workflow_type"]["Hold"], "Joinery's own workflow type is still named")
	require.Subset(t, []string{queue, "none"}, keys(values["task_queue"]), "only the worker's own queue")
	// The flood may add a series or two the baseline's single rogue did not
	// touch (a retried task, a sticky-queue poll), never one per name: 600
	// names would be thousands of series.
	require.LessOrEqual(t, after, before+50, "series grew with the number of random names")
}
