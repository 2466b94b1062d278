package run

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/workflows"
)

// ErrNotEligible matches the refusal of an HR record that is not a pending
// hire (errors.Is); errors.As with *activities.IneligibleError gives the
// reason. The CLI maps it to its own exit code, the intake to 422.
var ErrNotEligible = activities.ErrNotEligible

// eligibility is what one configuration checks HR records with: an HRIS
// client and the rules from the policy file.
type eligibility struct {
	hr    activities.HRIS
	rules activities.EligibilityRules
	intk  policy.Intake
	// intkErr is why the policy file could not be read (then rules are
	// strictRules and IntakePolicy fails).
	intkErr error
}

// strictRules decide when the policy file is not there (an operator's CLI
// run from another directory): no grace, and the write-back fields of the
// dev policy. They are the strictest the policy could set for the hire date,
// the username is checked whatever the fields, and the worker's own check
// applies the real policy, so a missing file never lets more through.
var strictRules = activities.EligibilityRules{OwnedFields: []string{hris.FieldWorkEmail, hris.DefaultUsernameField}}

type eligibilityKey struct {
	url, company, key, policyFile string
}

// eligibilities caches one eligibility per configuration: an intake
// handling a bulk upload must not re-read the policy file for every row.
// Like the worker, a process picks up a changed policy file at restart.
var eligibilities sync.Map // eligibilityKey -> *eligibility

func eligibilityFor(cfg config.Config) (*eligibility, error) {
	k := eligibilityKey{cfg.HRISURL, cfg.HRISCompany, cfg.HRISAPIKey, cfg.PolicyFile}
	if e, ok := eligibilities.Load(k); ok {
		return e.(*eligibility), nil
	}
	hr, err := hris.New(hris.Config{BaseURL: cfg.HRISURL, Company: cfg.HRISCompany, APIKey: cfg.HRISAPIKey})
	if err != nil {
		return nil, err
	}
	el := &eligibility{hr: hr}
	in, err := policy.LoadIntake(cfg.PolicyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		el.rules, el.intkErr = strictRules, fmt.Errorf("policy %s: %w", cfg.PolicyFile, err)
	case err != nil:
		return nil, fmt.Errorf("policy %s: %w", cfg.PolicyFile, err)
	default:
		el.rules, el.intk = activities.RulesFromPolicy(in), in
	}
	e, _ := eligibilities.LoadOrStore(k, el)
	return e.(*eligibility), nil
}

// IntakePolicy returns the intake section of cfg's policy file (cached
// like the eligibility rules).
func IntakePolicy(cfg config.Config) (policy.Intake, error) {
	e, err := eligibilityFor(cfg)
	if err != nil {
		return policy.Intake{}, err
	}
	// Fails closed: without its policy the intake cannot know its blast
	// radius, so it admits nothing.
	return e.intk, e.intkErr
}

// CheckEligibility reads the HR record of in.HRISID and returns in with
// the kind the record gives, or an *activities.IneligibleError (matching
// ErrNotEligible) saying why the record gets no joiner. Non-human requests
// (in.Request set) have no HR record of their own and pass unchanged; their
// sponsor is checked by the workflow.
func CheckEligibility(ctx context.Context, cfg config.Config, in workflows.JoinerInput) (workflows.JoinerInput, error) {
	if in.Request != nil {
		return in, nil
	}
	e, err := eligibilityFor(cfg)
	if err != nil {
		return in, err
	}
	kind, err := activities.CheckRecord(ctx, e.hr, in.HRISID, in.Kind, e.rules, time.Now())
	if err != nil {
		if errors.Is(err, ErrNotEligible) {
			return in, err
		}
		return in, fmt.Errorf("read HR record %s: %w", in.HRISID, err)
	}
	in.Kind = kind
	return in, nil
}

// Existing reports the joiner that already exists for hrisID and would
// make a new start collapse onto it: a running one, or a closed one that
// did not fail (a failed, rolled-back joiner may be started again). ok is
// false when there is none.
func Existing(ctx context.Context, c client.Client, cfg config.Config, hrisID string) (StartResult, bool, error) {
	id := workflows.JoinerWorkflowID(hrisID)
	res := StartResult{WorkflowID: id, UIURL: WorkflowURL(cfg, id)}
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return res, false, nil
	}
	if err != nil {
		return res, false, fmt.Errorf("describe %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	res.RunID = info.GetExecution().GetRunId()
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		res.Outcome = AlreadyRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return res, false, nil
	default:
		res.Outcome = AlreadyDone
	}
	return res, true, nil
}

// CollapsesOnExisting says whether a refusal is what a record reaches
// because its joiner ran: provisioned, or its hire date passed since. A
// repeated delivery of such a hire is then answered with the existing
// joiner ("already done"), as before. Any other refusal stands even when a
// joiner exists.
func CollapsesOnExisting(err error) bool {
	var ie *activities.IneligibleError
	if !errors.As(err, &ie) {
		return false
	}
	return ie.Reason == activities.ReasonAlreadyProvisioned || ie.Reason == activities.ReasonHireDatePassed
}

// NewEligibility builds the CheckEligible activity for the worker: the
// worker's HRIS connector and the rules of cfg's policy file, the same the
// start path uses, so the workflow's check cannot disagree with it.
func NewEligibility(cfg config.Config, hr activities.HRIS) (*activities.Eligibility, error) {
	in, err := policy.LoadIntake(cfg.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", cfg.PolicyFile, err)
	}
	return &activities.Eligibility{HRIS: hr, Rules: activities.RulesFromPolicy(in)}, nil
}
