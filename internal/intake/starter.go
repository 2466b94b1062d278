package intake

import (
	"context"
	"fmt"
	"sync"

	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Starter starts joiners and signals running ones, and is the door every
// intake path goes through: the HR record decides (Eligible), duplicates
// collapse (Existing), and the blast-radius hold admits or holds (Admit).
// It is deliberately small: the handlers' unit tests use a fake;
// production and integration tests use TemporalStarter.
type Starter interface {
	// Eligible reads the HR record and returns in with the kind the record
	// gives, or an *activities.IneligibleError saying why it gets no
	// joiner (run.CheckEligibility).
	Eligible(ctx context.Context, in workflows.JoinerInput) (workflows.JoinerInput, error)
	// Existing reports the joiner a start would collapse onto (running, or
	// closed without failing); ok is false when there is none.
	Existing(ctx context.Context, hrisID string) (res run.StartResult, ok bool, err error)
	// Admit asks the blast-radius hold whether item may be carried out
	// now; otherwise the hold keeps it for an operator.
	Admit(ctx context.Context, item workflows.HoldItem) (workflows.Admission, error)
	// Start starts the joiner for in.HRISID or reports the existing one
	// (run.AlreadyRunning, run.AlreadyDone): duplicates collapse.
	Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error)
	// Signal sends a signal to the running joiner of hrisID. When there is
	// none the error matches ErrNoRunningJoiner.
	Signal(ctx context.Context, hrisID, name string, payload any) error
}

// ErrNoRunningJoiner: the signal had no running joiner to go to (never
// started, or already done). It is run's, so every caller tells it apart the
// same way.
var ErrNoRunningJoiner = run.ErrNoRunningJoiner

// TemporalStarter is the Starter over a Temporal client.
type TemporalStarter struct {
	Client client.Client
	Config config.Config
	// Hold is the blast-radius hold (default: HoldFor(Client, Config)).
	Hold *Hold
	// NoHoldWorker: do not host a worker for the hold (something else
	// runs one on Hold.TaskQueue).
	NoHoldWorker bool

	hostMu   sync.Mutex
	stopHost func()
}

// Close stops the hold worker this starter hosts, if any.
func (s *TemporalStarter) Close() {
	s.hostMu.Lock()
	defer s.hostMu.Unlock()
	if s.stopHost != nil {
		s.stopHost()
		s.stopHost = nil
	}
}

// host starts the hold worker once (and again after a failed attempt).
func (s *TemporalStarter) host(h *Hold) error {
	if s.NoHoldWorker {
		return nil
	}
	s.hostMu.Lock()
	defer s.hostMu.Unlock()
	if s.stopHost != nil {
		return nil
	}
	stop, err := h.StartWorker()
	if err != nil {
		return err
	}
	s.stopHost = stop
	return nil
}

// NewTemporalStarter returns a Starter that starts joiners on cfg's task
// queue through c, guarded by the hold workflows.HoldWorkflowID on the
// same queue.
func NewTemporalStarter(c client.Client, cfg config.Config) *TemporalStarter {
	return &TemporalStarter{Client: c, Config: cfg, Hold: HoldFor(c, cfg)}
}

// Eligible checks the HR record with run.CheckEligibility.
func (s *TemporalStarter) Eligible(ctx context.Context, in workflows.JoinerInput) (workflows.JoinerInput, error) {
	return run.CheckEligibility(ctx, s.Config, in)
}

// Existing is run.Existing.
func (s *TemporalStarter) Existing(ctx context.Context, hrisID string) (run.StartResult, bool, error) {
	return run.Existing(ctx, s.Client, s.Config, hrisID)
}

// Admit asks the hold, with the blast radius of the policy file. A policy
// without intake.blast_radius admits everything without asking.
func (s *TemporalStarter) Admit(ctx context.Context, item workflows.HoldItem) (workflows.Admission, error) {
	in, err := run.IntakePolicy(s.Config)
	if err != nil {
		return workflows.Admission{}, err
	}
	if in.BlastRadius == nil {
		return workflows.Admission{Admitted: true}, nil
	}
	b := in.BlastRadius
	h := s.Hold
	if h == nil {
		h = HoldFor(s.Client, s.Config)
	}
	if err := s.host(h); err != nil {
		return workflows.Admission{}, err
	}
	return h.Admit(ctx, workflows.AdmitRequest{Item: item, Limits: workflows.HoldLimits{
		Window: b.Window, MaxStarts: b.MaxStarts, MaxRescinds: b.MaxRescinds, MaxHeld: b.MaxHeld}})
}

// Start starts a joiner with run.StartJoiner.
func (s *TemporalStarter) Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error) {
	return run.StartJoiner(ctx, s.Client, s.Config, in)
}

// Signal signals the joiner of hrisID; with no running joiner the error
// matches ErrNoRunningJoiner (an Updated event for an employee never seen
// then starts one), otherwise it is a Temporal fault (answer 503 so the
// HRIS retries).
func (s *TemporalStarter) Signal(ctx context.Context, hrisID, name string, payload any) error {
	return run.Signal(ctx, s.Client, hrisID, name, payload)
}

// Ready reports whether the Temporal frontend answers; /readyz uses it.
func (s *TemporalStarter) Ready(ctx context.Context) error {
	if _, err := s.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal at %s: %w", s.Config.TemporalAddress, err)
	}
	return nil
}
