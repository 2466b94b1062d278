package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

// Step names, used by fault injection and in logs.
const (
	StepFetch      = "fetch"
	StepClaim      = "claim"
	StepGrant      = "grant"
	StepCredential = "credential"
	StepWriteBack  = "writeback"
)

// FetchInput names the joiner to read from the HRIS.
type FetchInput struct {
	HRISID string `json:"hrisId"`
	Kind   string `json:"kind,omitempty"`
}

// FetchJoiner reads the joiner's HR record and the manager chain the approval
// route needs, and normalises them into the policy's Worker.
func (a *Activities) FetchJoiner(ctx context.Context, in FetchInput) (policy.Worker, error) {
	if err := a.admitRead(ctx, "fetch-joiner", "read HR record "+in.HRISID); err != nil {
		return policy.Worker{}, err
	}
	return a.fetchWorker(ctx, in.HRISID, in.Kind)
}

// fetchWorker is FetchJoiner's reading, shared with the order checks'
// re-plan (which passes kind "": the HR record decides it).
func (a *Activities) fetchWorker(ctx context.Context, hrisID, kind string) (policy.Worker, error) {
	w, err := a.HRIS.GetWorker(ctx, hrisID)
	if err != nil {
		return policy.Worker{}, classify(err)
	}
	if kind == "" {
		kind = kindFromHR(w)
	}
	out := policy.Worker{
		HRISID: w.ID, EmployeeNumber: w.EmployeeNumber, FirstName: w.FirstName, LastName: w.LastName,
		PreferredName: w.PreferredName, Department: w.Department, JobTitle: w.JobTitle, Location: w.Location,
		ManagerID: w.SupervisorID, HireDate: w.HireDate, EndDate: w.TerminationDate, Kind: kind,
		EmploymentStatus: w.EmploymentStatus, Email: w.WorkEmail,
	}
	if out.HRISID == "" {
		out.HRISID = hrisID
	}
	if w.SupervisorID != "" {
		m, err := a.HRIS.GetWorker(ctx, w.SupervisorID)
		if err != nil {
			return policy.Worker{}, classify(err)
		}
		out.ManagerUsername, out.ManagerEmail = m.Username, m.WorkEmail
		if m.SupervisorID != "" {
			mm, err := a.HRIS.GetWorker(ctx, m.SupervisorID)
			if err != nil {
				return policy.Worker{}, classify(err)
			}
			out.ManagersManagerUsername = mm.Username
		}
	}
	return out, nil
}

func kindFromHR(w hris.Worker) string {
	if strings.EqualFold(w.EmploymentStatus, "Contractor") {
		return policy.KindContractor
	}
	return policy.KindEmployee
}

// PlanJoiner evaluates the worker's policy for this joiner. Its result is
// recorded in history, which is how a running joiner keeps the policy version
// it started under when the file changes.
func (a *Activities) PlanJoiner(ctx context.Context, w policy.Worker) (policy.Plan, error) {
	if err := a.admitRead(ctx, "plan-joiner", "plan joiner "+w.HRISID); err != nil {
		return policy.Plan{}, err
	}
	p, err := a.Policy.Plan(w)
	if err != nil {
		return policy.Plan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidJoiner, nil)
	}
	// For a Joiner caller, keep the authoritative plan of this run (made
	// from the HR record or the recorded request, not from w) for its
	// later order checks: see orders.go.
	a.recordPlan(ctx, w.HRISID, w.Kind)
	return p, nil
}

// SnapshotInput names the HR fields whose current values the write-back will
// compare against.
type SnapshotInput struct {
	HRISID string   `json:"hrisId"`
	Fields []string `json:"fields"`
}

// SnapshotHRIS reads the owned fields' values as they are when the joiner
// starts, so the write-back can tell an HR edit from its own earlier write.
func (a *Activities) SnapshotHRIS(ctx context.Context, in SnapshotInput) (map[string]string, error) {
	if err := a.admitRead(ctx, "snapshot-hris", "read HR fields of "+in.HRISID); err != nil {
		return nil, err
	}
	if len(in.Fields) == 0 {
		return map[string]string{}, nil
	}
	v, err := a.HRIS.GetFields(ctx, in.HRISID, in.Fields)
	return v, classify(err)
}

// ClaimInput asks for the first free username among the candidates.
type ClaimInput struct {
	HRISID     string            `json:"hrisId"`
	Candidates []string          `json:"candidates"`
	NonHuman   bool              `json:"nonHuman,omitempty"`
	Worker     policy.Worker     `json:"worker"`
	Attributes map[string]string `json:"attributes,omitempty"` // may contain {username}
	ManagerDN  string            `json:"managerDn,omitempty"`
	// Request is a non-human joiner's request, so the claim can be
	// re-planned from it (its sponsor re-resolved); nil for people.
	Request *NonHumanRequest `json:"request,omitempty"`
	// Approvals are the decisions that approved this joiner, as the inbox
	// signed them: the claim is the first side effect, so it re-verifies
	// them itself (see approvalProven) and a workflow that never got an
	// approval cannot create anything.
	Approvals []ApprovalProof `json:"approvals,omitempty"`
}

// ApprovalProof is one approval a joiner counted: the inbox-signed
// decision, or a break-glass marker (accepted only where the plan's route
// enables break-glass).
type ApprovalProof struct {
	Signed     *decision.Signed `json:"signed,omitempty"`
	BreakGlass bool             `json:"breakGlass,omitempty"`
}

// ClaimResult is the claimed username and the entry created for it.
type ClaimResult struct {
	Username string `json:"username"`
	DN       string `json:"dn"`
	Existing bool   `json:"existing"`
}

// Error types of a claim that found the person already in the directory, and
// of a change refused because the entry is not this joiner's. All three are
// non-retryable; the first two carry an ExistingAccount as their details.
const (
	// ErrTypeAlreadyProvisioned: the person (by employee number, in the
	// people or the service-accounts container) has an entry created by
	// another joiner, or by an earlier run of this one. Nothing was changed.
	ErrTypeAlreadyProvisioned = directory.TypeAlreadyProvisioned
	// ErrTypeNeedsOperator: the person has an entry Joinery did not create
	// (made by hand or by another system, active or disabled). Nothing was
	// changed; an operator decides.
	ErrTypeNeedsOperator = directory.TypeNeedsOperator
	// ErrTypeNotOwner: a password, grant, disable or delete was refused
	// because the entry does not carry this joiner's marker.
	ErrTypeNotOwner = directory.TypeNotOwner
)

// ExistingAccount is the details payload of ErrTypeAlreadyProvisioned and
// ErrTypeNeedsOperator errors: the entry that stopped the claim.
type ExistingAccount struct {
	DN         string `json:"dn"`
	EmployeeID string `json:"employeeId"`
	Username   string `json:"username,omitempty"`
	// Joiner and Run are the entry's ownership marker; empty for
	// ErrTypeNeedsOperator.
	Joiner string `json:"joiner,omitempty"`
	Run    string `json:"run,omitempty"`
}

// joiner identifies the joiner an account activity runs for.
type joiner struct {
	// ID is the workflow ID, the ownership marker of its entries.
	ID string
	// Run is the workflow run ID ("" outside an activity: any run).
	Run string
}

// joinerOf returns the joiner ctx's activity runs for, from Temporal's own
// activity info: an activity input can lie, the task's workflow execution
// cannot. Outside an activity (a test or an operator tool calling the method
// directly, trusted code) it falls back to the workflow ID convention of
// workflows.JoinerWorkflowID, which this package cannot import.
func joinerOf(ctx context.Context, hrisID string) joiner {
	if activity.IsActivity(ctx) {
		we := activity.GetInfo(ctx).WorkflowExecution
		return joiner{ID: we.ID, Run: we.RunID}
	}
	return joiner{ID: "joiner-" + hrisID}
}

// ClaimAccount claims a username and creates the directory entry in one LDAP
// add per candidate: the directory's own uniqueness decides, so two joiners
// racing for one name can never both get it. The entry carries this
// joiner's marker (workflow ID and run); a retry after a lost response finds
// it by that marker and returns it. A person who already has an entry stops
// the claim before any change: ErrTypeAlreadyProvisioned or
// ErrTypeNeedsOperator, with the entry as ExistingAccount details.
func (a *Activities) ClaimAccount(ctx context.Context, in ClaimInput) (ClaimResult, error) {
	if err := a.fault(StepClaim, in.HRISID); err != nil {
		return ClaimResult{}, err
	}
	o, err := a.admit(ctx, StepClaim, in.HRISID, fmt.Sprintf("claim one of %v", in.Candidates))
	if err != nil {
		return ClaimResult{}, err
	}
	claimOK := checkClaim(in)
	p, verified, err := a.verify(ctx, o, in.Request, in.Worker.Kind, func(p planned) string {
		if why := claimOK(p); why != "" {
			return why
		}
		return approvalProven(a.DecisionKeys, o.c.id, o.c.run, in.Approvals, p.plan)
	})
	if err != nil {
		own, ferr := a.thisRunsEntry(ctx, o, in.HRISID, err)
		if ferr != nil || own == nil {
			return ClaimResult{}, err
		}
		// The re-plan refuses, but this very run already holds an entry:
		// a re-run of a lost workflow task (workflows/localsteps.go) after
		// a policy or HR change. Refusing would roll the run back without
		// the entry, and without the groups, credential and write-back
		// made for it; so the claim goes on with that entry's username
		// alone (the cross-container check still runs). Only this run's
		// own marker counts: nothing another run could not do.
		a.log().Warn("re-plan refuses the claim, but this run already holds an entry: answering with it", "hrisId", in.HRISID,
			"joiner", o.c.id, "dn", own.DN)
		in.Candidates = []string{own.Username}
		verified = false
	}
	if verified {
		// The entry's names come from the authoritative record, not from
		// the order: the order's candidates were checked, its person was not.
		in.Worker.FirstName, in.Worker.LastName = p.worker.FirstName, p.worker.LastName
		in.Worker.JobTitle, in.Worker.Department = p.worker.JobTitle, p.worker.Department
	}
	j := joinerOf(ctx, in.HRISID)
	person := func(username string) directory.Person {
		attrs := map[string]string{}
		for k, v := range in.Attributes {
			attrs[k] = strings.ReplaceAll(v, "{username}", username)
		}
		p := directory.Person{
			EmployeeID:  in.HRISID,
			Owner:       j.ID,
			OwnerRun:    j.Run,
			GivenName:   in.Worker.FirstName,
			Surname:     in.Worker.LastName,
			DisplayName: strings.TrimSpace(in.Worker.FirstName + " " + in.Worker.LastName),
			Title:       in.Worker.JobTitle,
			Department:  in.Worker.Department,
			ManagerDN:   in.ManagerDN,
			NonHuman:    in.NonHuman,
			Extra:       map[string][]string{},
		}
		for k, v := range attrs {
			switch strings.ToLower(k) {
			case "mail":
				p.Mail = v
			case "displayname":
				p.DisplayName = v
			case "title":
				p.Title = v
			case "departmentnumber", "department":
				p.Department = v
			default:
				p.Extra[k] = []string{v}
			}
		}
		return p
	}
	acct, err := a.Directory.ClaimFirstWith(ctx, in.Candidates, person)
	var found *directory.ExistingEntryError
	if errors.As(err, &found) {
		typ := ErrTypeNeedsOperator
		if found.Owner != "" {
			typ = ErrTypeAlreadyProvisioned
		}
		a.log().Warn("joiner stopped: the person already has a directory entry", "hrisId", in.HRISID,
			"joiner", j.ID, "dn", found.DN, "owner", found.Owner, "type", typ)
		return ClaimResult{}, temporal.NewNonRetryableApplicationError(err.Error(), typ, err, ExistingAccount{
			DN: found.DN, EmployeeID: found.EmployeeID, Username: found.Username, Joiner: found.Owner, Run: found.OwnerRun})
	}
	if err != nil {
		return ClaimResult{}, classify(err)
	}
	a.log().Info("username claimed", "hrisId", in.HRISID, "joiner", j.ID, "username", acct.Username, "dn", acct.DN, "existing", acct.Existing)
	return ClaimResult{Username: acct.Username, DN: acct.DN, Existing: acct.Existing}, nil
}

// thisRunsEntry is the entry this very run created, when the order was
// refused (refusal) and the caller is a workflow run: nil otherwise.
func (a *Activities) thisRunsEntry(ctx context.Context, o order, hrisID string, refusal error) (*directory.Entry, error) {
	var ae *temporal.ApplicationError
	if !o.c.inActivity || o.c.run == "" || !errors.As(refusal, &ae) || ae.Type() != ErrTypeOrderRefused {
		return nil, nil
	}
	e, err := a.Directory.FindByOwner(ctx, joinerOf(ctx, hrisID).ID)
	if err != nil || e == nil || e.OwnerRun != o.c.run {
		return nil, err
	}
	return e, nil
}

// AccountRef names a joiner's directory entry.
type AccountRef struct {
	HRISID   string `json:"hrisId"`
	DN       string `json:"dn"`
	NonHuman bool   `json:"nonHuman,omitempty"`
}

// ownEntry finds the entry this joiner created, by its marker, or nil when
// there is nothing of this run's to act on. An entry of an earlier run of the
// same joiner counts only when this run recorded its DN (its claim returned
// it, e.g. after a workflow reset): when this run's claim never succeeded
// (in.DN empty), the entry is an earlier run's, possibly a live account, and
// this run has nothing to undo.
func (a *Activities) ownEntry(ctx context.Context, j joiner, in AccountRef) (*directory.Entry, error) {
	e, err := a.Directory.FindByOwner(ctx, j.ID)
	if err != nil || e == nil {
		return nil, err
	}
	if j.Run != "" && e.OwnerRun != j.Run && in.DN == "" {
		a.log().Warn("the joiner's entry was created by an earlier run; this run created nothing there",
			"hrisId", in.HRISID, "joiner", j.ID, "dn", e.DN, "entryRun", e.OwnerRun, "run", j.Run)
		return nil, nil
	}
	if j.Run != "" && e.OwnerRun != "" && e.OwnerRun != j.Run {
		// An earlier run's entry counts only for a run of the same chain
		// (a reset, a retry or a continue-as-new of the run that created
		// it): a new run started under the reused ID after the joiner
		// closed is another joiner's life, and must not reach a live
		// account by naming its DN.
		same, err := a.sameChain(ctx, j.ID, j.Run, e.OwnerRun)
		if err != nil {
			return nil, err
		}
		if !same {
			a.log().Warn("the joiner's entry was created by a run of another chain; this run created nothing there",
				"event", "security", "hrisId", in.HRISID, "joiner", j.ID, "dn", e.DN, "entryRun", e.OwnerRun, "run", j.Run)
			return nil, nil
		}
	}
	if in.DN != "" && !strings.EqualFold(e.DN, in.DN) {
		a.log().Warn("joiner's entry is not at the recorded DN; acting on the one that carries its marker",
			"hrisId", in.HRISID, "recorded", in.DN, "found", e.DN)
	}
	return e, nil
}

// sameChain reports whether runs a and b of workflow id share their first
// run (Temporal's chain of resets, retries and continue-as-new). Without a
// Temporal client (tests that build Activities by hand) it says yes, as
// before the check existed; a run Temporal no longer knows (past retention)
// is of no chain of today's.
func (a *Activities) sameChain(ctx context.Context, id, runA, runB string) (bool, error) {
	if a.Runs == nil {
		return true, nil
	}
	first := func(run string) (string, error) {
		d, err := a.Runs.DescribeWorkflowExecution(ctx, id, run)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("describe run %s of %s: %w", run, id, err)
		}
		return d.GetWorkflowExecutionInfo().GetFirstRunId(), nil
	}
	fa, err := first(runA)
	if err != nil {
		return false, err
	}
	fb, err := first(runB)
	if err != nil {
		return false, err
	}
	return fa != "" && fa == fb, nil
}

// DeleteAccount removes the joiner's entry. It finds and deletes only the
// entry that carries this joiner's marker (the delete asserts it), so a
// compensation can never remove a namesake, a person who was already in the
// directory, or another joiner's account; nothing there means nothing to
// undo.
func (a *Activities) DeleteAccount(ctx context.Context, in AccountRef) error {
	if _, err := a.admit(ctx, "delete-account", in.HRISID, "delete the joiner's entry"); err != nil {
		return err
	}
	j := joinerOf(ctx, in.HRISID)
	e, err := a.ownEntry(ctx, j, in)
	if err != nil || e == nil {
		return classify(err)
	}
	return classify(a.Directory.Delete(ctx, e.DN, j.ID))
}

// GroupInput names one membership.
type GroupInput struct {
	HRISID   string `json:"hrisId"`
	Group    string `json:"group"` // cn under the groups OU
	MemberDN string `json:"memberDn"`
}

// GrantGroup adds the member; already a member counts as success. The
// member must be this joiner's own entry (its marker is checked), so a grant
// can never land on someone who was in the directory before; the directory
// itself only lets the service account change the groups the policy lists.
// It returns the grant it carried out: a local activity's history marker
// holds its result but not its input, and the audit record
// (internal/audit) reads the group from there.
func (a *Activities) GrantGroup(ctx context.Context, in GroupInput) (GroupInput, error) {
	if err := a.fault(StepGrant+":"+in.Group, in.HRISID); err != nil {
		return GroupInput{}, err
	}
	if err := a.fault(StepGrant, in.HRISID); err != nil {
		return GroupInput{}, err
	}
	o, err := a.admit(ctx, StepGrant, in.HRISID, fmt.Sprintf("grant %s to %s", in.Group, in.MemberDN))
	if err != nil {
		return GroupInput{}, err
	}
	if _, _, err := a.verify(ctx, o, nil, "", checkGroup(in.Group)); err != nil {
		return GroupInput{}, err
	}
	if err := classify(a.Directory.AddMember(ctx, a.Directory.GroupDN(in.Group), in.MemberDN, joinerOf(ctx, in.HRISID).ID)); err != nil {
		return GroupInput{}, err
	}
	return in, nil
}

// RevokeGroup removes the member; not a member counts as success. The member
// must be this joiner's entry, or gone.
func (a *Activities) RevokeGroup(ctx context.Context, in GroupInput) error {
	// A compensation needs no re-plan: it may remove any group (the policy
	// may have changed), but only from this joiner's own entry (the marker
	// RemoveMember asserts).
	if _, err := a.admit(ctx, "revoke-group", in.HRISID, fmt.Sprintf("remove %s from %s", in.MemberDN, in.Group)); err != nil {
		return err
	}
	return classify(a.Directory.RemoveMember(ctx, a.Directory.GroupDN(in.Group), in.MemberDN, joinerOf(ctx, in.HRISID).ID))
}

// CredentialInput asks for a joiner's initial credential.
type CredentialInput struct {
	HRISID    string        `json:"hrisId"`
	Username  string        `json:"username"`
	DN        string        `json:"dn"`
	Recipient string        `json:"recipient"` // who receives the wrapped token (the manager)
	WrapTTL   time.Duration `json:"wrapTtl"`
}

// CredentialResult references the stored credential; never the value.
type CredentialResult struct {
	Path         string    `json:"path"`
	Version      int       `json:"version"`
	WrapAccessor string    `json:"wrapAccessor"`
	ExpiresAt    time.Time `json:"expiresAt"`
	DeliveredTo  string    `json:"deliveredTo"`
	// Accessors are the wrapping accessors of every handover this joiner's
	// credential ever had (retries included), oldest first, WrapAccessor
	// last; all but WrapAccessor were ended before this one was delivered.
	// RevokeCredential ends them from Vault's own ledger, so the workflow
	// need not pass them back; they are here for the audit record.
	Accessors []string `json:"accessors,omitempty"`
}

// IssueCredential generates the initial password with Vault's password
// policy, sets it on the directory account, stores it in KV v2 under the
// joiner and hands a single-use wrapping token to the recipient — all inside
// this one activity, so the value never reaches workflow history.
//
// A retry (the earlier attempt delivered, then the worker died before
// Temporal recorded its result) ends the earlier attempt's wrapping token
// and destroys its stored version before handing over the new one: the
// recipient ends up with exactly one redeemable token, for the password the
// account has.
func (a *Activities) IssueCredential(ctx context.Context, in CredentialInput) (CredentialResult, error) {
	if err := a.fault(StepCredential, in.HRISID); err != nil {
		return CredentialResult{}, err
	}
	if in.Recipient == "" {
		return CredentialResult{}, temporal.NewNonRetryableApplicationError("no recipient for the initial credential", ErrTypeInvalidJoiner, nil)
	}
	o, err := a.admit(ctx, StepCredential, in.HRISID, fmt.Sprintf("set a password on %s, deliver to %s", in.DN, in.Recipient))
	if err != nil {
		return CredentialResult{}, err
	}
	if _, _, err := a.verify(ctx, o, nil, "", checkCredential(in)); err != nil {
		return CredentialResult{}, err
	}
	j := joinerOf(ctx, in.HRISID)
	meta := map[string]string{"joiner": in.HRISID, "username": in.Username, "dn": in.DN, "recipient": in.Recipient, "workflow": j.ID}
	// The password only goes on an entry this joiner created: a DN in the
	// input that names someone else's account is refused (ErrTypeNotOwner).
	h, err := a.Secrets.IssueInitialCredential(ctx, in.HRISID, meta, in.WrapTTL,
		func(ctx context.Context, pw string) error { return a.Directory.SetPassword(ctx, in.DN, j.ID, pw) },
		func(ctx context.Context, token string) error {
			return a.Handover.Deliver(ctx, in.Recipient, in.HRISID, token)
		})
	if err != nil {
		return CredentialResult{}, classify(err)
	}
	return CredentialResult{Path: h.Path, Version: h.Version, WrapAccessor: h.WrapAccessor, ExpiresAt: h.ExpiresAt,
		DeliveredTo: in.Recipient, Accessors: h.Accessors}, nil
}

// RevokeInput names a stored credential and its wrapping token.
type RevokeInput struct {
	HRISID   string `json:"hrisId"`
	Path     string `json:"path"`
	Accessor string `json:"accessor,omitempty"`
}

// RevokeCredential ends every wrapping token the credential was handed out
// with (the worker redeems each one Vault's ledger still holds live) and
// destroys every version. Without a path (the issue step failed before answering) it destroys the
// joiner's own path: the step may have stored a version before it failed.
func (a *Activities) RevokeCredential(ctx context.Context, in RevokeInput) error {
	o, err := a.admit(ctx, "revoke-credential", in.HRISID, "destroy the credential at "+in.Path)
	if err != nil {
		return err
	}
	own := a.Secrets.JoinerPath(in.HRISID, secrets.InitialCredentialName)
	path := in.Path
	if path == "" {
		path = own
	}
	// Only the joiner's own path: a path in the order could name any
	// secret the worker may destroy.
	if o.c.inActivity && path != own {
		return a.refuse(o, fmt.Sprintf("path %q is not this joiner's credential path", path))
	}
	return classify(a.Secrets.RevokeInitialCredential(ctx, path, in.Accessor))
}

// WriteBackInput is the owned HR fields to write and the values seen at start.
type WriteBackInput struct {
	HRISID   string            `json:"hrisId"`
	Want     map[string]string `json:"want"`
	Expected map[string]string `json:"expected"`
}

// WriteBackOutput mirrors hris.WriteBackResult for history.
type WriteBackOutput struct {
	Written    []string             `json:"written,omitempty"`
	AlreadySet []string             `json:"alreadySet,omitempty"`
	Conflicts  []hris.FieldConflict `json:"conflicts,omitempty"`
}

// WriteBack writes the finalised attributes Joinery owns, read-compare-write:
// a value HR changed since the joiner started is reported, never overwritten.
func (a *Activities) WriteBack(ctx context.Context, in WriteBackInput) (WriteBackOutput, error) {
	if err := a.fault(StepWriteBack, in.HRISID); err != nil {
		return WriteBackOutput{}, err
	}
	if err := a.verifyWriteBack(ctx, StepWriteBack, in, false); err != nil {
		return WriteBackOutput{}, err
	}
	r, err := a.HRIS.WriteBack(ctx, in.HRISID, in.Want, in.Expected)
	if err != nil {
		return WriteBackOutput{}, classify(err)
	}
	return WriteBackOutput{Written: r.Written, AlreadySet: r.AlreadySet, Conflicts: r.Conflicts}, nil
}

// UndoWriteBack restores the values seen at start for fields Joinery wrote,
// but only where the HRIS still holds Joinery's value: an HR edit made since
// is theirs and stays.
func (a *Activities) UndoWriteBack(ctx context.Context, in WriteBackInput) error {
	// Want = the original values, Expected = what Joinery wrote.
	if err := a.verifyWriteBack(ctx, "undo-writeback", in, true); err != nil {
		if errors.Is(err, errNothingToUndo) {
			return nil
		}
		return err
	}
	r, err := a.HRIS.WriteBack(ctx, in.HRISID, in.Want, in.Expected)
	if err != nil {
		return classify(err)
	}
	for _, c := range r.Conflicts {
		a.log().Warn("write-back undo left an HR-side change in place", "hrisId", in.HRISID, "field", c.Field)
	}
	return nil
}

// errNothingToUndo: the joiner has no entry, so it never wrote back.
var errNothingToUndo = errors.New("nothing to undo")

// verifyWriteBack checks a write-back (or its undo) against the joiner: the
// username in the values is the one on the entry carrying this joiner's
// marker (so a write-back needs an entry this joiner created), and the
// fields and values are the plan's WriteBackFor(username). The end of
// time-bound access (one end-state word in the access-status field) needs
// no re-plan: by then the HR record may no longer plan (the person left),
// and the word is not the caller's choice of value.
func (a *Activities) verifyWriteBack(ctx context.Context, step string, in WriteBackInput, undo bool) error {
	o, err := a.admit(ctx, step, in.HRISID, fmt.Sprintf("write %v to HR record %s", sortedFields(in.Want), in.HRISID))
	if err != nil || !o.c.inActivity {
		return err
	}
	o.undo = undo
	e, err := a.Directory.FindByOwner(ctx, o.c.id)
	if err != nil {
		return classify(err)
	}
	if e == nil {
		if undo {
			a.log().Warn("write-back undo: the joiner has no entry, so it wrote nothing back", "hrisId", in.HRISID, "joiner", o.c.id)
			return errNothingToUndo
		}
		return a.refuse(o, "the joiner has no directory entry of its own, so there is nothing to write back")
	}
	if !undo && isEndStateWrite(in.Want) {
		return nil
	}
	check := checkWriteBack(in.Want, e.Username)
	if undo {
		check = checkUndo(in, e.Username)
	}
	_, _, err = a.verify(ctx, o, nil, "", check)
	return err
}

func sortedFields(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Notify sends a notification to a person (approver, sponsor). Only the
// joiner the notification is about may send it: otherwise any workflow on
// the task queue could send Joinery-branded mail (a phishing channel). Who
// it goes to is not re-planned (reminders and escalations go to people the
// plan derives over time); the mail notifier only writes to directory
// addresses and redacts secret-shaped text.
func (a *Activities) Notify(ctx context.Context, n Notification) error {
	if _, err := a.admit(ctx, "notify", n.HRISID, fmt.Sprintf("send a %s notification to %s", n.Kind, n.To)); err != nil {
		return err
	}
	if a.Notifier == nil {
		return nil
	}
	if err := a.Notifier.Notify(ctx, n); err != nil {
		return fmt.Errorf("notify %s: %w", n.To, err)
	}
	return nil
}
