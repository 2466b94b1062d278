// Package activities holds the joiner's side effects. Activities is a struct
// whose fields are the connector interfaces, injected at worker start; the
// workflow refers to its methods through a nil *Activities.
//
// Every activity is idempotent (create-if-absent keyed on the joiner's HRIS ID)
// and every compensation succeeds when there is nothing left to undo. Errors
// leave here classified: permanent ones as non-retryable application errors
// with a stable type, transient ones as plain errors that Temporal retries.
package activities

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/pseudonym"
)

// Directory is what the joiner needs from LDAP / Active Directory.
type Directory interface {
	ClaimFirstWith(ctx context.Context, candidates []string, person func(username string) directory.Person) (directory.Account, error)
	FindByEmployeeID(ctx context.Context, employeeID string, nonHuman bool) (*directory.Entry, error)
	// FindByOwner and the changes below take the joiner (workflow ID) that
	// must have created the entry: Joinery only changes what it created.
	FindByOwner(ctx context.Context, owner string) (*directory.Entry, error)
	SetPassword(ctx context.Context, dn, owner, password string) error
	AddMember(ctx context.Context, groupDN, memberDN, owner string) error
	RemoveMember(ctx context.Context, groupDN, memberDN, owner string) error
	Delete(ctx context.Context, dn, owner string) error
	Disable(ctx context.Context, dn, owner string) error
	GroupDN(cn string) string
}

// Secrets is what the joiner needs from Vault.
type Secrets interface {
	IssueInitialCredential(ctx context.Context, joinerKey string, meta map[string]string, ttl time.Duration,
		setPassword func(context.Context, string) error, deliver func(context.Context, string) error) (secrets.Handover, error)
	RevokeInitialCredential(ctx context.Context, path, accessor string) error
	JoinerPath(joinerKey, name string) string
}

// HRIS is what the joiner needs from the HR system.
type HRIS interface {
	GetWorker(ctx context.Context, id string) (hris.Worker, error)
	GetFields(ctx context.Context, id string, fields []string) (map[string]string, error)
	WriteBack(ctx context.Context, id string, want, expected map[string]string) (hris.WriteBackResult, error)
}

// Planner evaluates the joiner policy; *policy.Policy implements it.
type Planner interface {
	Plan(w policy.Worker) (policy.Plan, error)
}

// Handover delivers a wrapping token to the person who hands the credential
// over (the manager). The token is single use and short-lived; it never
// enters workflow history.
type Handover interface {
	Deliver(ctx context.Context, recipient, joinerID, token string) error
}

// Notifier tells people what a joiner needs from them (approval requests,
// reminders, escalations).
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Notification is one message to a person.
type Notification struct {
	To      string `json:"to"`
	HRISID  string `json:"hrisId"`
	Kind    string `json:"kind"` // approval-request, reminder, escalation, outcome
	Message string `json:"message"`
}

// Activities is registered with the worker. Directory, Secrets, HRIS, Policy
// and Handover are required; Workloads is needed for non-human joiners with a
// Vault grant; Notifier may be nil (no notifications); Faults is for tests,
// which use it to inject a failure at a named step.
type Activities struct {
	Directory Directory
	Secrets   Secrets
	Workloads Workloads
	HRIS      HRIS
	Policy    Planner
	Handover  Handover
	Notifier  Notifier
	// People looks approvers up in the directory (live approver checks).
	People People
	// DecisionKeys are the inbox public keys decisions must be signed
	// with; DecisionMaxAge bounds their age; InboxURL is where people
	// decide (for links). Each joiner records them once in its history.
	DecisionKeys   []decision.PublicKey
	DecisionMaxAge time.Duration
	InboxURL       string
	Logger         *slog.Logger
	// AuditLog is the append-only, hash-chained file ExportAudit writes
	// each joiner's record to (JOINERY_AUDIT_LOG); "" exports nothing.
	AuditLog string
	// Pseudonyms computes the usernames' stand-ins for search attributes
	// (SearchPseudonyms, JOINERY_PSEUDONYM_KEY); nil refuses to.
	Pseudonyms *pseudonym.Keyer
	// Faults, when set, is consulted at the start of each side effect; a
	// non-nil error fails that step (tests of the rollback use it).
	Faults func(step, hrisID string) error
	// Runs describes workflow runs (client.Client): VerifyContinued asks
	// it what the run a continued joiner says it continues really was.
	// Nil refuses every continued state.
	Runs ContinuedRuns

	// orders caches re-plans and each verified run's planning for the
	// order checks (orders.go); made on first use.
	orders *orderBook
}

// Error types raised by activities themselves (connector errors carry their own).
const (
	ErrTypeInvalidJoiner = "InvalidJoiner"
	ErrTypeInjectedFault = "InjectedFault"
)

// classify turns a connector error into what Temporal should do with it.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		if ce.Retryable {
			return temporal.NewApplicationErrorWithCause(ce.Error(), ce.Type, ce)
		}
		return temporal.NewNonRetryableApplicationError(ce.Error(), ce.Type, ce)
	}
	return err
}

func (a *Activities) fault(step, hrisID string) error {
	if a.Faults == nil {
		return nil
	}
	if err := a.Faults(step, hrisID); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInjectedFault, nil)
	}
	return nil
}

func (a *Activities) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}
