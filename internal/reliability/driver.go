package reliability

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Driver plays HR, the approval inbox and the operator against a private
// stack: it enters hires, starts joiners, signs approvals with the stack's
// inbox key, rescinds, cancels and waits. It goes straight to the servers
// and Temporal, never through the proxies (the faults are the worker's).
type Driver struct {
	S      *Stack
	Cfg    config.Config
	C      client.Client
	signer decision.Signer
}

// NewDriver dials the private stack's Temporal.
func NewDriver(ctx context.Context, s *Stack, repo string) (*Driver, error) {
	env := s.ClientEnv(repo)
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	signer, err := decision.LoadFileSigner(cfg.DecisionKeyFile)
	if err != nil {
		return nil, err
	}
	return &Driver{S: s, Cfg: cfg, C: c, signer: signer}, nil
}

// Hire enters a pending hire starting in days days (1: provisioned now and
// held open in Provisioned until tomorrow, so it can still be rescinded).
func (d *Driver) Hire(ctx context.Context, first, last string, days int) (string, error) {
	return e2e.AddEmployee(ctx, d.S.EP, map[string]string{
		"firstName": first, "lastName": last, "department": "Engineering", "jobTitle": "Engineer",
		"location": "DE-Berlin", "supervisorEId": "100",
		"hireDate":                time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly),
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
}

// Start starts the joiner for an HR record.
func (d *Driver) Start(ctx context.Context, id string) (run.StartResult, error) {
	return run.StartJoiner(ctx, d.C, d.Cfg, workflows.JoinerInput{HRISID: id, Source: "reliability"})
}

// StartNonHuman requests a time-bound service account sponsored by ada.
func (d *Driver) StartNonHuman(ctx context.Context, name string, days int) (string, error) {
	key := workflows.NonHumanKey(name, "staging")
	today := time.Now().UTC()
	_, err := run.StartJoiner(ctx, d.C, d.Cfg, workflows.JoinerInput{HRISID: key, Kind: "service-account", Source: "reliability",
		Request: &activities.NonHumanRequest{Name: name, SponsorID: "100", Environment: "staging", Purpose: "reliability suite",
			StartDate: today.Format(time.DateOnly), EndDate: today.AddDate(0, 0, days).Format(time.DateOnly)}})
	return key, err
}

// Status queries a joiner (needs a worker).
func (d *Driver) Status(ctx context.Context, id string) (workflows.Status, enumspb.WorkflowExecutionStatus, error) {
	st, _, es, err := run.Status(ctx, d.C, id)
	return st, es, err
}

// Approve waits until the joiner asks for approval and approves it as the
// approver the plan names, signed with the private stack's inbox key (the
// driver stands in for the inbox, which has its own tests).
func (d *Driver) Approve(ctx context.Context, id string) error {
	var st workflows.Status
	for {
		var err error
		st, _, err = d.Status(ctx, id)
		if err == nil && st.Stage == workflows.StageAwaitingApproval {
			break
		}
		if err == nil && st.Stage != workflows.StageValidating && st.Stage != workflows.StageWaitingStartDate && st.Stage != "" {
			return fmt.Errorf("joiner %s is %s, not awaiting approval", id, st.Stage)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joiner %s never asked for approval (stage %q, last error %v)", id, st.Stage, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	desc, err := d.C.DescribeWorkflowExecution(ctx, run.ResolveID(id), "")
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	_, _ = crand.Read(nonce)
	signed, err := d.signer.Sign(ctx, decision.Decision{
		WorkflowID: run.ResolveID(id), RunID: desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(),
		PlanHash: st.PlanHash, PolicyVersion: st.PolicyVersion, Approver: st.Plan.Approval.Approver,
		Action: decision.ActionApprove, Comment: "reliability suite", IssuedAt: time.Now(),
		Nonce: hex.EncodeToString(nonce), Via: "reliability-suite",
	})
	if err != nil {
		return err
	}
	if err := run.Signal(ctx, d.C, id, workflows.SignalApprove, workflows.ApprovalSignal{Signed: &signed}); err != nil {
		return err
	}
	// A non-human joiner in production needs a second approver; staging
	// (what the suite requests) needs only the sponsor.
	return nil
}

// Rescind withdraws the offer (HR's rescind signal).
func (d *Driver) Rescind(ctx context.Context, id string) error {
	return run.Signal(ctx, d.C, id, workflows.SignalRescind, workflows.RescindSignal{By: "hr.reliability", Reason: "reliability suite", Via: "api"})
}

// Cancel asks Temporal to cancel the joiner (what `temporal workflow
// cancel` does).
func (d *Driver) Cancel(ctx context.Context, id string) error {
	return d.C.CancelWorkflow(ctx, run.ResolveID(id), "")
}

// Settled is where a joiner rests: Provisioned/Active (running, waiting for
// time to pass) or closed.
type Settled struct {
	ID     string
	Stage  workflows.Stage
	Status enumspb.WorkflowExecutionStatus
	Err    error
}

// Closed reports whether the workflow is closed.
func (s Settled) Closed() bool { return s.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING }

// WaitSettled waits until the joiner is closed or rests in one of stages
// (read from the JoinerStage search attribute via Describe, so it works
// while the worker is dead).
func (d *Driver) WaitSettled(ctx context.Context, id string, stages ...workflows.Stage) Settled {
	var last Settled
	for {
		last = d.describe(ctx, id)
		if last.Err == nil && last.Closed() {
			return last
		}
		for _, s := range stages {
			if last.Err == nil && last.Stage == s {
				return last
			}
		}
		select {
		case <-ctx.Done():
			if last.Err == nil {
				last.Err = fmt.Errorf("joiner %s did not settle: stage %s, %s", id, last.Stage, last.Status)
			}
			return last
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *Driver) describe(ctx context.Context, id string) Settled {
	out := Settled{ID: id}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	desc, err := d.C.DescribeWorkflowExecution(cctx, run.ResolveID(id), "")
	if err != nil {
		out.Err = err
		return out
	}
	info := desc.GetWorkflowExecutionInfo()
	out.Status = info.GetStatus()
	if f := info.GetSearchAttributes().GetIndexedFields()["JoinerStage"]; f != nil {
		var stage string
		if err := converter.GetDefaultDataConverter().FromPayload(f, &stage); err == nil {
			out.Stage = workflows.Stage(stage)
		}
	}
	return out
}

// WaitAll runs WaitSettled for every id in parallel.
func (d *Driver) WaitAll(ctx context.Context, ids []string, stages ...workflows.Stage) map[string]Settled {
	out := make(map[string]Settled, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, id := range ids {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s := d.WaitSettled(ctx, id, stages...)
			mu.Lock()
			out[id] = s
			mu.Unlock()
		}(id)
	}
	wg.Wait()
	return out
}

// ExpectOf maps a settled joiner to what must exist on the servers.
func ExpectOf(s Settled) (Expect, error) {
	if s.Err != nil {
		return Gone, s.Err
	}
	switch s.Stage {
	case workflows.StageProvisioned, workflows.StageActive, workflows.StageCompleted:
		return Live, nil
	case workflows.StageRescinded, workflows.StageRejected, workflows.StageFailed:
		return Gone, nil
	case workflows.StageRevoked, workflows.StageExpired:
		return Disabled, nil
	}
	return Gone, errors.New("joiner " + s.ID + " ended in " + string(s.Stage) + " (" + s.Status.String() + ")")
}
