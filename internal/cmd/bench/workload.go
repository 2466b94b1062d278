package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/workflows"
)

// item is one workflow the bench drives: started and waiting for its
// approval when prepare returns it.
type item struct {
	workflowID string
	hrisID     string           // joiners only
	status     workflows.Status // joiners: what the signed decision names
	runID      string
}

// workload is what the bench measures: the joiner or the bare baseline.
type workload interface {
	name() string
	// prepare starts one workflow and returns once it waits for approval.
	prepare(ctx context.Context, seq int) (item, error)
	// approve sends the approval (the timed section starts just before).
	approve(ctx context.Context, it item) error
	// wait returns when the workflow has closed successfully.
	wait(ctx context.Context, it item) error
	// cleanup removes what the workflows left on the servers.
	cleanup(ctx context.Context, its []item)
}

// joinerLoad drives real joiners: an HR record entered in the reference
// HRIS, the joiner started as the intake would, approved with a decision
// signed by the dev stack's inbox key (as the e2e harness does), and
// provisioned by bin/worker through LDAP, Vault and the HRIS.
type joinerLoad struct {
	c      client.Client
	cfg    config.Config
	ep     stack.Endpoints
	signer decision.Signer
	acts   *activities.Activities // for cleanup only
	groups []string
	runTag string
}

func (j *joinerLoad) name() string { return "joiner" }

func (j *joinerLoad) prepare(ctx context.Context, seq int) (item, error) {
	// A distinct last name per joiner: every one claims its first-choice
	// username, as in BenchmarkJoinerEndToEnd.
	id, err := e2e.AddEmployee(ctx, j.ep, map[string]string{
		"firstName": "Bench", "lastName": fmt.Sprintf("Mark%s%d%d", j.runTag, seq, rand.IntN(1e6)),
		"department": "Engineering", "jobTitle": "Engineer", "location": "DE-Berlin",
		"supervisorEId": "100", "hireDate": time.Now().Format(time.DateOnly),
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	if err != nil {
		return item{}, fmt.Errorf("hire: %w", err)
	}
	res, err := run.StartJoiner(ctx, j.c, j.cfg, workflows.JoinerInput{HRISID: id, Source: "bench"})
	if err != nil {
		return item{hrisID: id}, err
	}
	it := item{workflowID: res.WorkflowID, hrisID: id, runID: res.RunID}
	for {
		st, _, status, err := run.Status(ctx, j.c, id)
		if err == nil && st.Stage == workflows.StageAwaitingApproval {
			it.status = st
			return it, nil
		}
		if status != 0 && status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return it, fmt.Errorf("joiner %s closed (%s) before asking for approval", id, status)
		}
		select {
		case <-ctx.Done():
			return it, fmt.Errorf("joiner %s never asked for approval (stage %q, %v): %w", id, st.Stage, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (j *joinerLoad) approve(ctx context.Context, it item) error {
	nonce := make([]byte, 16)
	_, _ = crand.Read(nonce)
	s, err := j.signer.Sign(ctx, decision.Decision{
		WorkflowID: it.workflowID, RunID: it.runID, PlanHash: it.status.PlanHash,
		PolicyVersion: it.status.PolicyVersion, Approver: it.status.Plan.Approval.Approver,
		Action: decision.ActionApprove, Comment: "bench", IssuedAt: time.Now(),
		Nonce: hex.EncodeToString(nonce), Via: "bench",
	})
	if err != nil {
		return err
	}
	return run.Signal(ctx, j.c, it.workflowID, workflows.SignalApprove, workflows.ApprovalSignal{Signed: &s})
}

func (j *joinerLoad) wait(ctx context.Context, it item) error {
	res, err := run.Result(ctx, j.c, it.workflowID)
	if err != nil {
		return err
	}
	if res.Outcome != workflows.OutcomeCompleted {
		return fmt.Errorf("joiner %s: outcome %s", it.hrisID, res.Outcome)
	}
	return nil
}

// cleanup ends the joiners and removes their entries, memberships and
// credentials with the product's own idempotent compensations, so that
// benchmark runs do not fill the dev directory (the HR records stay, as
// the e2e tests' do).
func (j *joinerLoad) cleanup(ctx context.Context, its []item) {
	// A few at a time: one by one, a thousand joiners take many minutes.
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, it := range its {
		if it.hrisID == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = j.c.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(it.hrisID), "", "bench ended")
			if e, err := j.acts.Directory.FindByEmployeeID(ctx, it.hrisID, false); err == nil && e != nil {
				for _, g := range j.groups {
					_ = j.acts.RevokeGroup(ctx, activities.GroupInput{HRISID: it.hrisID, Group: g, MemberDN: e.DN})
				}
			}
			_ = j.acts.DeleteAccount(ctx, activities.AccountRef{HRISID: it.hrisID})
			_ = j.acts.RevokeCredential(ctx, activities.RevokeInput{HRISID: it.hrisID})
		}()
	}
	wg.Wait()
}

// bareLoad drives the bare baseline workflow on its own task queue.
type bareLoad struct {
	c          client.Client
	taskQueue  string
	activities int
	runTag     string
}

func (b *bareLoad) name() string { return fmt.Sprintf("bare (%d no-op)", b.activities) }

func (b *bareLoad) prepare(ctx context.Context, seq int) (item, error) {
	id := fmt.Sprintf("bench-bare-%s-%d-%d", b.runTag, seq, rand.IntN(1e9))
	r, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: b.taskQueue},
		bareWorkflowName, BareInput{Activities: b.activities})
	if err != nil {
		return item{}, err
	}
	it := item{workflowID: id, runID: r.GetRunID()}
	for {
		// The query answers once the first workflow task ran: the same
		// "waiting for approval" point the joiner's status query marks.
		v, err := b.c.QueryWorkflow(ctx, id, "", bareQueryReady)
		var ready bool
		if err == nil && v.Get(&ready) == nil && ready {
			return it, nil
		}
		select {
		case <-ctx.Done():
			return it, fmt.Errorf("bare %s never became ready (%v): %w", id, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *bareLoad) approve(ctx context.Context, it item) error {
	return b.c.SignalWorkflow(ctx, it.workflowID, "", bareSignal, nil)
}

func (b *bareLoad) wait(ctx context.Context, it item) error {
	var n int
	if err := b.c.GetWorkflow(ctx, it.workflowID, "").Get(ctx, &n); err != nil {
		return err
	}
	if n != b.activities {
		return fmt.Errorf("bare %s ran %d activities, want %d", it.workflowID, n, b.activities)
	}
	return nil
}

func (b *bareLoad) cleanup(ctx context.Context, its []item) {
	for _, it := range its {
		_ = b.c.TerminateWorkflow(ctx, it.workflowID, "", "bench ended")
	}
}

// historyLength is the number of events a closed workflow wrote.
func historyLength(ctx context.Context, c client.Client, id string) (int64, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return 0, err
	}
	if d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return 0, errors.New(id + " still running")
	}
	return d.GetWorkflowExecutionInfo().GetHistoryLength(), nil
}
