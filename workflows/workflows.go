// Package workflows holds Joinery's Temporal workflows and the types they
// share with the starter and the activities. Workflow code is deterministic:
// no I/O, no clocks, no randomness — those live in activities.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

// JoinerWorkflowID derives the workflow ID from the HR record ID, so repeated
// or concurrent deliveries of one hire collapse onto one joiner.
func JoinerWorkflowID(hrisID string) string { return "joiner-" + hrisID }

// Signal, query and update names. Operators use the same names from the
// Temporal Web UI ("Send a Signal") and the starter CLI.
const (
	SignalApprove         = "approve"
	SignalReject          = "reject"
	SignalRescind         = "rescind"
	SignalStartDateChange = "start-date"
	SignalExtend          = "extend"
	SignalRevoke          = "revoke"
	UpdateDecide          = "decide"
	QueryStatus           = "status"
)

// Stage is where a joiner is; it is also the JoinerStage search attribute.
type Stage string

// Stages in the order a joiner passes them.
const (
	StageValidating       Stage = "Validating"
	StageWaitingStartDate Stage = "WaitingForStartDate"
	StageAwaitingApproval Stage = "AwaitingApproval"
	StageClaimingUsername Stage = "ClaimingUsername"
	StageGrantingGroups   Stage = "GrantingGroups"
	StageIssuingSecret    Stage = "IssuingCredential"
	StageWritingBack      Stage = "WritingBack"
	StageCompleted        Stage = "Completed"
	// StageActive is a time-bound joiner (contractor, non-human) that is
	// provisioned and watched until its end date.
	StageActive      Stage = "Active"
	StageRevoking    Stage = "Revoking"
	StageExpired     Stage = "Expired"
	StageRevoked     Stage = "Revoked"
	StageRollingBack Stage = "RollingBack"
	StageRejected    Stage = "Rejected"
	StageRescinded   Stage = "Rescinded"
	StageFailed      Stage = "Failed"
	// StageCompensationFailed means a rollback step kept failing: something
	// may be left behind and an operator must look (the result says what).
	StageCompensationFailed Stage = "CompensationFailed"
	// StageProvisioned is an employee joiner that is provisioned and kept
	// open until the start date (plus the policy's grace), so a rescind or
	// an HR termination before the start still rolls everything back.
	StageProvisioned Stage = "Provisioned"
	// StageCompensationStuck is a rollback or revocation step that has
	// failed for longer than the policy's threshold; it keeps retrying (an
	// operator may send retry-compensations to try now).
	StageCompensationStuck Stage = "CompensationStuck"
	// StageNeedsOperator and StageAlreadyProvisioned: the person already
	// has a directory entry (made outside Joinery, or by another joiner);
	// the joiner stopped before changing anything.
	StageNeedsOperator      Stage = "NeedsOperator"
	StageAlreadyProvisioned Stage = "AlreadyProvisioned"
)

// Search attributes, declared once. Registered by the dev stack; see README
// for a cluster.
var (
	SAStage      = temporal.NewSearchAttributeKeyKeyword("JoinerStage")
	SAKind       = temporal.NewSearchAttributeKeyKeyword("JoinerKind")
	SAManager    = temporal.NewSearchAttributeKeyKeyword("JoinerManager")
	SADepartment = temporal.NewSearchAttributeKeyKeyword("JoinerDepartment")
	SAHRISID     = temporal.NewSearchAttributeKeyKeyword("HRISID")
	// SAExpiry is when time-bound access ends, for "expiring within" lists.
	SAExpiry = temporal.NewSearchAttributeKeyTime("JoinerExpiry")
	// SADeciders lists the directory usernames who may decide now (approver,
	// delegates, escalation target, second approver, sponsor, and the owner
	// of active time-bound access for extensions): the inbox's "waiting for
	// me". SADecidedBy lists who has decided: "my past decisions".
	SADeciders  = temporal.NewSearchAttributeKeyKeywordList("JoinerDeciders")
	SADecidedBy = temporal.NewSearchAttributeKeyKeywordList("JoinerDecidedBy")
)

// The values of SAManager, SADeciders and SADecidedBy are not usernames
// for joiners planned since version "pseudonymous-search-attributes": they
// are keyed pseudonyms (internal/pseudonym, JOINERY_PSEUDONYM_KEY), since
// the server indexes and shows search attributes in clear. Joiners planned
// before hold usernames until they close. No search attribute and no
// workflow ID carries a person's name: SAHRISID and joiner-<HRIS ID> are the
// HR system's record number, SAKind and SAStage are enumerations, SAExpiry
// a date, SADepartment an organisational unit; a non-human joiner's key
// (nhi-<name>-<environment>) names the workload, not a person.

// SearchKeys is what a pseudonymous joiner publishes for people: the
// pseudonym of each lower-cased username its plan names, computed once at
// planning by the SearchPseudonyms activity. Nil on joiners from before.
type SearchKeys struct {
	Pseudonyms map[string]string `json:"pseudonyms"`
}

// JoinerInput starts a joiner. It carries references, not personal data: the
// workflow fetches the HR record itself so history shows what it saw.
type JoinerInput struct {
	// HRISID is the HR system's employee ID.
	HRISID string `json:"hrisId"`
	// Kind is employee (default), contractor, service-account, pipeline or ai-agent.
	Kind string `json:"kind,omitempty"`
	// Source says how the joiner was started: cli, webhook, api, bulk,
	// import, scim, make-run.
	Source string `json:"source,omitempty"`
	// RequestedBy is the operator or system that started it.
	RequestedBy string `json:"requestedBy,omitempty"`
	// EventID is the HR event's delivery ID, for the audit record.
	EventID string `json:"eventId,omitempty"`
	// Request describes a non-human joiner (no HR record); HRISID is then
	// the joiner's own key, e.g. nhi-deploy-bot-production.
	Request *activities.NonHumanRequest `json:"request,omitempty"`
	// Rehire starts a new generation (workflow ID joiner-<id>~g<N>) that
	// re-enables the person's old entry (rehire.go); only `starter rehire`
	// sets it.
	Rehire bool `json:"rehire,omitempty"`
	// Continued is the state a joiner carries into its next run when it
	// continues as new (continued.go). Only the joiner itself sets it; a
	// start that carries it is refused.
	Continued *Continued `json:"continued,omitempty"`
}

// NonHumanKey derives a non-human joiner's key (and so its workflow ID) from
// its name and environment, so a repeated request collapses onto one joiner.
func NonHumanKey(name, environment string) string {
	return "nhi-" + name + "-" + environment
}

// ExtendSignal asks to move the end date of time-bound access. Joiners
// started since signed decisions carry Signed (an extend decision from the
// inbox); EndDate and By alone prove nothing and are refused.
type ExtendSignal struct {
	EndDate string           `json:"endDate,omitempty"` // YYYY-MM-DD
	By      string           `json:"by,omitempty"`
	Comment string           `json:"comment,omitempty"`
	Signed  *decision.Signed `json:"signed,omitempty"`
}

// Decision is an approval, a rejection or a refused attempt, as the joiner
// recorded it.
type Decision struct {
	Approver string    `json:"approver"`
	Approved bool      `json:"approved"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
	Via      string    `json:"via"` // signal, update, timeout, extend (+ inbox path)
	// Refused is set when the decision did not count (unsigned, bad
	// signature, not an approver, stale, replayed...); the attempt is
	// recorded and has no effect.
	Refused string `json:"refused,omitempty"`
	// KeyID and Nonce identify the signed decision that counted; Signed says
	// the workflow verified an inbox signature.
	Signed bool   `json:"signed,omitempty"`
	KeyID  string `json:"keyId,omitempty"`
	Nonce  string `json:"nonce,omitempty"`
	// IssuedAt is when the inbox signed the decision.
	IssuedAt *time.Time `json:"issuedAt,omitempty"`
	// BreakGlass marks an operator decision without the inbox, which only a
	// policy that enables break-glass accepts, with a reason.
	BreakGlass bool `json:"breakGlass,omitempty"`
	// Seq is the decision's place among the signals of its channel (Via)
	// that this joiner received (1-based), so the audit can pair it with
	// the history event that carried it and the sender's Temporal identity.
	Seq int `json:"seq,omitempty"`
	// UpdateID is the decide update's ID when the decision came by update.
	UpdateID string `json:"updateId,omitempty"`

	// endDate is a verified extend decision's new end date (not recorded:
	// the comment says it).
	endDate string
}

// ApprovalSignal is the payload of the approve and reject signals and of the
// decide update. The inbox fills Signed; an operator may fill BreakGlass
// where policy allows it. Approver, Comment and Approve are what joiners
// started before signed decisions read; for newer joiners an approver's name
// alone proves nothing, and such a decision is refused and recorded.
type ApprovalSignal struct {
	Signed     *decision.Signed `json:"signed,omitempty"`
	BreakGlass *BreakGlass      `json:"breakGlass,omitempty"`
	Approver   string           `json:"approver,omitempty"`
	Comment    string           `json:"comment,omitempty"`
	// Approve is used by the decide update only (signals imply it).
	Approve bool `json:"approve,omitempty"`
}

// BreakGlass is an operator's decision made without the inbox (the inbox
// is down, the approver unreachable). Policy must enable it; it needs a
// reason and is marked as break-glass in status, audit and the Web UI.
type BreakGlass struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
}

// RescindSignal withdraws the offer: the joiner stops and rolls back. It is
// also the revoke signal's payload. HR and operators may send it; By and Via
// are what the sender says, and the audit adds the Temporal identity that
// actually sent it.
type RescindSignal struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Via is the path: webhook, cli, api.
	Via string `json:"via,omitempty"`
}

// StartDateSignal moves the hire date (and so the provisioning timer).
type StartDateSignal struct {
	HireDate string `json:"hireDate"` // YYYY-MM-DD
	By       string `json:"by,omitempty"`
}

// Resource is one thing a joiner created, with its undo state.
type Resource struct {
	Kind      string     `json:"kind"` // ldap-entry, group-membership, vault-secret, hris-field
	ID        string     `json:"id"`
	Detail    string     `json:"detail,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	UndoneAt  *time.Time `json:"undoneAt,omitempty"`
	UndoError string     `json:"undoError,omitempty"`
	// Ahead: registered before its step ran (the local path,
	// workflows/localsteps.go), and that step has not run in this run. Its
	// undo still runs on a rollback, in case a lost run of the task made
	// it; undoing what was never made changes nothing.
	Ahead bool `json:"ahead,omitempty"`
}

// Event is one line of the joiner's own narrative (reminders, escalations,
// start-date moves), kept for the status query and the audit record.
type Event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// Status is what the status query returns.
type Status struct {
	HRISID        string       `json:"hrisId"`
	Stage         Stage        `json:"stage"`
	PolicyVersion string       `json:"policyVersion,omitempty"`
	Plan          *policy.Plan `json:"plan,omitempty"`
	// PlanHash is what a signed decision must name (decision.PlanHash of
	// Plan as first recorded); the inbox recomputes it from Plan.
	PlanHash string `json:"planHash,omitempty"`
	// DecisionKeys are the inbox public keys this joiner accepts, recorded
	// in its history when it was planned.
	DecisionKeys []decision.PublicKey `json:"decisionKeys,omitempty"`
	// Approvers may decide now (approver, delegates, escalation target).
	Approvers []string `json:"approvers,omitempty"`
	// SecondApprover must also approve when the policy route names one.
	SecondApprover string `json:"secondApprover,omitempty"`
	// Approvals are the decisions that counted and the most recent refused
	// ones; Refused counts every refused attempt, so a flood cannot grow
	// the joiner's state.
	Approvals   []Decision   `json:"approvals,omitempty"`
	Refused     int          `json:"refused,omitempty"`
	Resources   []Resource   `json:"resources,omitempty"`
	Events      []Event      `json:"events,omitempty"`
	Username    string       `json:"username,omitempty"`
	DN          string       `json:"dn,omitempty"`
	ProvisionAt *time.Time   `json:"provisionAt,omitempty"`
	Owner       string       `json:"owner,omitempty"`
	EndDate     string       `json:"endDate,omitempty"`
	Workload    *WorkloadRef `json:"workload,omitempty"`
	// StuckSince is when an undo step was reported stuck; UndoAttempts
	// counts its failed rounds.
	StuckSince   *time.Time `json:"stuckSince,omitempty"`
	UndoAttempts int        `json:"undoAttempts,omitempty"`

	// SearchKeys, when set, says the joiner's people search attributes
	// carry these pseudonyms, never names (kept in the status so a run
	// continued as new goes on publishing them).
	SearchKeys *SearchKeys `json:"searchKeys,omitempty"`
}

// Outcomes of a joiner.
const (
	OutcomeCompleted          = "completed"
	OutcomeRejected           = "rejected"
	OutcomeRescinded          = "rescinded"
	OutcomeFailed             = "failed"
	OutcomeCompensationFailed = "compensation-failed"
	OutcomeExpired            = "expired"
	OutcomeRevoked            = "revoked"
	OutcomeNeedsOperator      = "needs-operator"
	OutcomeAlreadyProvisioned = "already-provisioned"
)

// JoinerResult is the joiner's final state. It names the policy version it
// ran under and every resource created or undone; it never holds a secret.
type JoinerResult struct {
	HRISID        string          `json:"hrisId"`
	Outcome       string          `json:"outcome"`
	Stage         Stage           `json:"stage"`
	PolicyVersion string          `json:"policyVersion,omitempty"`
	Username      string          `json:"username,omitempty"`
	DN            string          `json:"dn,omitempty"`
	UsernameRule  string          `json:"usernameRule,omitempty"`
	Groups        []string        `json:"groups,omitempty"`
	Credential    *CredentialRef  `json:"credential,omitempty"`
	WriteBack     *WriteBackState `json:"writeBack,omitempty"`
	Approvals     []Decision      `json:"approvals,omitempty"`
	Resources     []Resource      `json:"resources,omitempty"`
	Undone        []string        `json:"undone,omitempty"`
	Error         string          `json:"error,omitempty"`
	// Time-bound access: owner, end date, the workload's Vault objects, and
	// what was revoked when access ended.
	Owner    string       `json:"owner,omitempty"`
	EndDate  string       `json:"endDate,omitempty"`
	Workload *WorkloadRef `json:"workload,omitempty"`
	Tools    []string     `json:"tools,omitempty"`
	Revoked  []string     `json:"revoked,omitempty"`
}

// WorkloadRef points at a non-human joiner's AppRole. The SecretID went to
// the sponsor wrapped; only its accessor is here.
type WorkloadRef = activities.WorkloadResult

// CredentialRef points at the initial credential: a Vault path, version and
// the wrapping token's accessor. The value and the token are never here.
type CredentialRef struct {
	Path         string    `json:"path"`
	Version      int       `json:"version"`
	WrapAccessor string    `json:"wrapAccessor"`
	ExpiresAt    time.Time `json:"expiresAt"`
	DeliveredTo  string    `json:"deliveredTo"`
}

// WriteBackState is what the HRIS write-back did.
type WriteBackState struct {
	Written    []string        `json:"written,omitempty"`
	AlreadySet []string        `json:"alreadySet,omitempty"`
	Conflicts  []FieldConflict `json:"conflicts,omitempty"`
}

// FieldConflict is an HR-side change that Joinery refused to overwrite.
type FieldConflict struct {
	Field    string `json:"field"`
	Expected string `json:"expected"`
	Current  string `json:"current"`
	Wanted   string `json:"wanted"`
}
