package run

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/workflows"
)

// StartOutcome says what a start request did.
type StartOutcome string

// Start outcomes. Repeated or concurrent deliveries of one hire collapse
// onto one workflow ID, so all but the first answer "already ...".
const (
	Started        StartOutcome = "started"
	AlreadyRunning StartOutcome = "already running"
	AlreadyDone    StartOutcome = "already done"
)

// StartResult is the answer to a start request.
type StartResult struct {
	WorkflowID string       `json:"workflowId"`
	RunID      string       `json:"runId"`
	Outcome    StartOutcome `json:"outcome"`
	UIURL      string       `json:"uiUrl"`
}

// WorkflowURL is the Web UI page of a joiner.
func WorkflowURL(cfg config.Config, workflowID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimRight(cfg.TemporalUIURL, "/"), cfg.TemporalNamespace, workflowID)
}

// StartJoiner starts the joiner for an HR record, or reports the one that
// already exists for it. A joiner that failed (and rolled back) may be
// started again; a completed, rejected or rescinded one may not.
//
// The HR record decides whether there is a joiner at all, and of which
// kind (CheckEligibility): a record that is not a pending hire is refused
// with an error matching ErrNotEligible, and a kind the caller asks for
// that contradicts the record is refused, not obeyed. A refusal that a
// provisioned hire naturally reaches (already provisioned, hire date
// passed) still answers "already done" while Temporal remembers the joiner,
// so repeated deliveries collapse as before; once it has forgotten, the HR
// record alone refuses the start.
func StartJoiner(ctx context.Context, c client.Client, cfg config.Config, in workflows.JoinerInput) (StartResult, error) {
	if err := workflows.ValidateHRISID(in.HRISID); err != nil {
		return StartResult{}, err
	}
	if in.Kind != "" && !policy.IsKnownKind(in.Kind) {
		return StartResult{}, fmt.Errorf("kind %q: want one of %s", in.Kind, strings.Join(policy.Kinds(), ", "))
	}
	checked, err := CheckEligibility(ctx, cfg, in)
	if err != nil {
		if CollapsesOnExisting(err) {
			if ex, ok, xerr := Existing(ctx, c, cfg, in.HRISID); xerr == nil && ok {
				return ex, nil
			}
		}
		return StartResult{WorkflowID: workflows.JoinerWorkflowID(in.HRISID)}, err
	}
	in = checked
	id := workflows.JoinerWorkflowID(in.HRISID)
	kind := in.Kind
	if kind == "" {
		kind = "employee"
	}
	opts := client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                cfg.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK hands back the existing run as if it had just
		// started it, and a duplicate delivery would be reported as "started".
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAHRISID.ValueSet(in.HRISID),
			workflows.SAStage.ValueSet(string(workflows.StageValidating)),
			workflows.SAKind.ValueSet(kind),
		),
		// The UI shows this on the list page: which joiner, no personal data.
		StaticSummary: fmt.Sprintf("Joiner %s (%s), started via %s", in.HRISID, kind, orDefault(in.Source, "cli")),
		StaticDetails: fmt.Sprintf("HR record **%s**; requested by %s. Approve with signal `%s` and input `{\"approver\": \"<username>\", \"comment\": \"...\"}`.",
			in.HRISID, orDefault(in.RequestedBy, "unknown"), workflows.SignalApprove),
	}
	res := StartResult{WorkflowID: id, UIURL: WorkflowURL(cfg, id)}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.Joiner, in)
	if err == nil {
		res.RunID, res.Outcome = run.GetRunID(), Started
		return res, nil
	}
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if !errors.As(err, &already) {
		return res, fmt.Errorf("start %s: %w", id, err)
	}
	desc, derr := c.DescribeWorkflowExecution(ctx, id, "")
	if derr != nil {
		return res, fmt.Errorf("start %s: already exists, and describing it failed: %w", id, derr)
	}
	info := desc.GetWorkflowExecutionInfo()
	res.RunID = info.GetExecution().GetRunId()
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		res.Outcome = AlreadyRunning
	} else {
		res.Outcome = AlreadyDone
	}
	return res, nil
}

// ResolveID accepts an HRIS ID or a workflow ID.
func ResolveID(s string) string {
	if strings.HasPrefix(s, "joiner-") {
		return s
	}
	return workflows.JoinerWorkflowID(s)
}

// ErrNoRunningJoiner means a signal had no running joiner to go to (never
// started, or already finished), as opposed to Temporal being unreachable.
var ErrNoRunningJoiner = errors.New("no running joiner with that ID")

// Signal sends a signal to a running joiner. When there is none the error
// matches ErrNoRunningJoiner.
func Signal(ctx context.Context, c client.Client, idOrHRIS, name string, payload any) error {
	id := ResolveID(idOrHRIS)
	if err := c.SignalWorkflow(ctx, id, "", name, payload); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("%s: %w", id, ErrNoRunningJoiner)
		}
		return fmt.Errorf("signal %s to %s: %w", name, id, err)
	}
	return nil
}

// Decide sends the approval as a synchronous update and returns the
// workflow's answer ("approved", "rejected") or its refusal.
func Decide(ctx context.Context, c client.Client, idOrHRIS string, s workflows.ApprovalSignal) (string, error) {
	id := ResolveID(idOrHRIS)
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: workflows.UpdateDecide, Args: []any{s},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return "", fmt.Errorf("decide on %s: %w", id, err)
	}
	var out string
	if err := h.Get(ctx, &out); err != nil {
		return "", err
	}
	return out, nil
}

// Status queries a joiner's status (works on closed joiners while a worker
// is running) and, for closed ones, returns the final result too.
func Status(ctx context.Context, c client.Client, idOrHRIS string) (workflows.Status, *workflows.JoinerResult, enumspb.WorkflowExecutionStatus, error) {
	id := ResolveID(idOrHRIS)
	var st workflows.Status
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return st, nil, 0, fmt.Errorf("%s: %w", id, err)
	}
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, nil, status, fmt.Errorf("query %s: %w", id, err)
	}
	if err := v.Get(&st); err != nil {
		return st, nil, status, err
	}
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return st, nil, status, nil
	}
	res, err := Result(ctx, c, id)
	return st, res, status, err
}

// Result waits for a joiner's final result. A failed joiner's result travels
// in its error's details; it is returned together with that error.
func Result(ctx context.Context, c client.Client, idOrHRIS string) (*workflows.JoinerResult, error) {
	var res workflows.JoinerResult
	err := c.GetWorkflow(ctx, ResolveID(idOrHRIS), "").Get(ctx, &res)
	if err == nil {
		return &res, nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		if derr := ae.Details(&res); derr == nil {
			return &res, err
		}
	}
	return nil, err
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
