package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/policy"
)

// Workloads is what non-human joiners need from Vault: an AppRole bound to
// the pre-created workload policy of their grants, whose SecretID is handed
// over wrapped. The worker cannot write ACL policies (that would let it make
// itself root); see connectors/secrets.IssueWorkload.
type Workloads interface {
	IssueWorkload(ctx context.Context, req secrets.WorkloadRequest, deliver func(context.Context, string) error) (secrets.IssuedWorkload, error)
	RevokeWorkload(ctx context.Context, role string) error
	DeletePolicy(ctx context.Context, name string) error
}

// NonHumanRequest describes a service account, pipeline or AI agent: there
// is no HR record, so an accountable human (the sponsor) must exist in the
// HRIS and be active.
type NonHumanRequest struct {
	Name        string   `json:"name"`
	SponsorID   string   `json:"sponsorId"`
	Environment string   `json:"environment"`
	Purpose     string   `json:"purpose"`
	StartDate   string   `json:"startDate"`
	EndDate     string   `json:"endDate"`
	Tools       []string `json:"tools,omitempty"` // AI agents: tools and permissions, for the audit record
}

// ResolveInput asks for a non-human joiner's normalised record.
type ResolveInput struct {
	Key     string          `json:"key"`
	Kind    string          `json:"kind"`
	Request NonHumanRequest `json:"request"`
}

// ResolveNonHuman validates the sponsor against the live HRIS and builds the
// policy's Worker for the request.
func (a *Activities) ResolveNonHuman(ctx context.Context, in ResolveInput) (policy.Worker, error) {
	if err := a.admitRead(ctx, "resolve-nonhuman", "resolve a non-human request"); err != nil {
		return policy.Worker{}, err
	}
	w, err := a.resolveNonHuman(ctx, in)
	if err == nil {
		// Orders of this run that do not carry the request are re-planned
		// from it (orders.go).
		a.recordRequest(ctx, in)
	}
	return w, err
}

// resolveNonHuman is ResolveNonHuman's resolution, shared with the order
// checks' re-plan.
func (a *Activities) resolveNonHuman(ctx context.Context, in ResolveInput) (policy.Worker, error) {
	if in.Request.SponsorID == "" {
		return policy.Worker{}, temporal.NewNonRetryableApplicationError("sponsorId: required: a non-human joiner needs an accountable human", ErrTypeInvalidJoiner, nil)
	}
	sp, err := a.HRIS.GetWorker(ctx, in.Request.SponsorID)
	if err != nil {
		return policy.Worker{}, classify(err)
	}
	if !strings.EqualFold(sp.Status, "Active") || sp.TerminationDate != "" {
		return policy.Worker{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("sponsorId %s: the sponsor is not an active employee (status %q)", in.Request.SponsorID, sp.Status), ErrTypeInvalidJoiner, nil)
	}
	if sp.Username == "" {
		return policy.Worker{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("sponsorId %s: the sponsor has no directory username yet", in.Request.SponsorID), ErrTypeInvalidJoiner, nil)
	}
	w := policy.Worker{
		HRISID: in.Key, FirstName: in.Request.Name, Kind: in.Kind, Environment: in.Request.Environment,
		Purpose: in.Request.Purpose, SponsorUsername: sp.Username, HireDate: in.Request.StartDate, EndDate: in.Request.EndDate,
		Department: sp.Department,
	}
	// The sponsor's manager is where an unanswered approval escalates.
	if sp.SupervisorID != "" {
		m, err := a.HRIS.GetWorker(ctx, sp.SupervisorID)
		if err != nil {
			return policy.Worker{}, classify(err)
		}
		w.ManagerUsername = m.Username
	}
	return w, nil
}

// WorkloadInput asks for a workload's AppRole.
type WorkloadInput struct {
	Key string `json:"key"`
	// Kind picks the kind's pre-created workload policy (kinds may share
	// grant shapes); empty (joiners started before it existed) takes the
	// first policy that yields the grants.
	Kind      string              `json:"kind,omitempty"`
	Username  string              `json:"username"`
	Recipient string              `json:"recipient"`
	Workload  policy.WorkloadPlan `json:"workload"`
	Comment   string              `json:"comment"`
	// Request is the joiner's request, so the order can be re-planned
	// from it; without it, the request this run resolved is used.
	Request *NonHumanRequest `json:"request,omitempty"`
}

// WorkloadResult references the AppRole; the SecretID travels wrapped to
// the sponsor and never appears here.
type WorkloadResult struct {
	RoleName     string    `json:"roleName"`
	RoleID       string    `json:"roleId"`
	PolicyName   string    `json:"policyName"`
	PolicyHCL    string    `json:"policyHcl"`
	WrapAccessor string    `json:"wrapAccessor"`
	ExpiresAt    time.Time `json:"expiresAt"`
	DeliveredTo  string    `json:"deliveredTo"`
	// SecretIDAccessor names the one SecretID handed over (an accessor,
	// not a secret).
	SecretIDAccessor string `json:"secretIdAccessor,omitempty"`
	// Accessors are the wrapping accessors of every SecretID handover of
	// this role (retries included), oldest first, WrapAccessor last; the
	// SecretIDs of all the others were destroyed before this one went out.
	Accessors []string `json:"accessors,omitempty"`
}

// WorkloadNames are the Vault names a workload's role and token policy get
// (roles and policies are separate namespaces in Vault, so they share one
// name: joinery-<key>, e.g. joinery-nhi-deploy-bot-production).
func WorkloadNames(key string) (role, pol string) {
	return "joinery-" + key, "joinery-" + key
}

// IssueWorkloadCredential writes the token policy generated from the plan's
// grants, creates the AppRole bound to it (TTLs, SecretID uses, CIDRs from
// policy) and delivers a response-wrapped SecretID to the sponsor. Running it
// again rewrites the same policy and role and issues a fresh SecretID, after
// destroying every SecretID an earlier attempt minted (and possibly
// delivered, if the worker died before Temporal recorded the result): the
// role keeps only the SecretID this call hands over.
func (a *Activities) IssueWorkloadCredential(ctx context.Context, in WorkloadInput) (WorkloadResult, error) {
	if err := a.fault(StepCredential, in.Key); err != nil {
		return WorkloadResult{}, err
	}
	if a.Workloads == nil {
		return WorkloadResult{}, temporal.NewNonRetryableApplicationError("no Vault workload connector configured", ErrTypeInvalidJoiner, nil)
	}
	o, err := a.admit(ctx, StepCredential, in.Key, fmt.Sprintf("issue a workload credential with %d grants, deliver to %s", len(in.Workload.Grants), in.Recipient))
	if err != nil {
		return WorkloadResult{}, err
	}
	if _, _, err := a.verify(ctx, o, in.Request, in.Kind, checkWorkload(in)); err != nil {
		return WorkloadResult{}, err
	}
	role, _ := WorkloadNames(in.Key)
	grants := make([]secrets.GrantTemplate, len(in.Workload.Grants))
	for i, g := range in.Workload.Grants {
		grants[i] = secrets.GrantTemplate{Path: g.Path, Capabilities: g.Capabilities}
	}
	res, err := a.Workloads.IssueWorkload(ctx, secrets.WorkloadRequest{
		Role: role, Kind: in.Kind, Grants: grants, WrapTTL: in.Workload.WrapTTL,
		Options: secrets.AppRoleOptions{
			TokenTTL: in.Workload.TokenTTL, TokenMaxTTL: in.Workload.TokenMaxTTL,
			SecretIDNumUses: in.Workload.SecretIDNumUses, SecretIDTTL: in.Workload.SecretIDTTL,
			TokenBoundCIDRs: in.Workload.CIDRs, SecretIDBoundCIDRs: in.Workload.CIDRs,
		},
	}, func(ctx context.Context, token string) error {
		// An undelivered SecretID is consumed and destroyed by the connector.
		if err := a.Handover.Deliver(ctx, in.Recipient, in.Key, token); err != nil {
			return fmt.Errorf("deliver the wrapped SecretID to %s: %w", in.Recipient, err)
		}
		return nil
	})
	if err != nil {
		return WorkloadResult{}, classify(err)
	}
	return WorkloadResult{RoleName: role, RoleID: res.RoleID, PolicyName: res.PolicyName,
		PolicyHCL:    "# " + strings.ReplaceAll(in.Comment, "\n", " ") + "\n" + res.EffectivePolicy,
		WrapAccessor: res.Handover.WrapAccessor, ExpiresAt: res.Handover.ExpiresAt, DeliveredTo: in.Recipient,
		SecretIDAccessor: res.Handover.SecretIDAccessor, Accessors: res.Handover.Accessors}, nil
}

// RevokeWorkloadInput names a workload's Vault objects.
type RevokeWorkloadInput struct {
	Key      string `json:"key"`
	Accessor string `json:"accessor,omitempty"`
}

// RevokeWorkload takes the workload's permissions away (tokens it holds
// too) and deletes its AppRole with every SecretID, so an unredeemed wrapped
// SecretID (in.Accessor) unwraps to nothing usable; then it deletes the
// per-joiner token policy a workload provisioned before the workload
// catalogue still has. Absent objects count as done.
func (a *Activities) RevokeWorkload(ctx context.Context, in RevokeWorkloadInput) error {
	if a.Workloads == nil {
		return nil
	}
	// The role and policy names derive from the key, and the caller check
	// ties the key to the workflow ID: a joiner can only revoke its own.
	if _, err := a.admit(ctx, "revoke-workload", in.Key, "delete AppRole and policy of "+in.Key); err != nil {
		return err
	}
	role, pol := WorkloadNames(in.Key)
	if err := a.Workloads.RevokeWorkload(ctx, role); err != nil {
		return classify(err)
	}
	return classify(a.Workloads.DeletePolicy(ctx, pol))
}

// DisableAccount disables the joiner's directory entry (kept for the audit
// trail, unusable for login); nothing there means nothing to do. Only the
// entry carrying this joiner's marker is disabled (the modify asserts it),
// never another account of the same person.
func (a *Activities) DisableAccount(ctx context.Context, in AccountRef) error {
	if _, err := a.admit(ctx, "disable-account", in.HRISID, "disable the joiner's entry"); err != nil {
		return err
	}
	j := joinerOf(ctx, in.HRISID)
	e, err := a.ownEntry(ctx, j, in)
	if err != nil || e == nil {
		return classify(err)
	}
	return classify(a.Directory.Disable(ctx, e.DN, j.ID))
}
