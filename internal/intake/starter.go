package intake

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Starter starts joiners and signals running ones. It is deliberately small:
// the handlers' unit tests use a fake; production and integration tests use
// TemporalStarter.
type Starter interface {
	// Start starts the joiner for in.HRISID or reports the existing one
	// (run.AlreadyRunning, run.AlreadyDone): duplicates collapse.
	Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error)
	// Signal sends a signal to the running joiner of hrisID. When there is
	// none the error matches ErrNoRunningJoiner.
	Signal(ctx context.Context, hrisID, name string, payload any) error
}

// ErrNoRunningJoiner: the signal had no running joiner to go to (never
// started, or already closed).
var ErrNoRunningJoiner = errors.New("no running joiner for that HR record")

// TemporalStarter is the Starter over a Temporal client.
type TemporalStarter struct {
	Client client.Client
	Config config.Config
}

// NewTemporalStarter returns a Starter that starts joiners on cfg's task
// queue through c.
func NewTemporalStarter(c client.Client, cfg config.Config) *TemporalStarter {
	return &TemporalStarter{Client: c, Config: cfg}
}

// Start starts a joiner with run.StartJoiner.
func (s *TemporalStarter) Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error) {
	return run.StartJoiner(ctx, s.Client, s.Config, in)
}

// Signal signals the joiner of hrisID. It talks to the client directly rather
// than through run.Signal because the intake must tell "no such joiner" (an
// Updated event for an employee never seen: start one) from a Temporal
// outage (answer 503 so the HRIS retries), and run.Signal flattens both
// into text.
func (s *TemporalStarter) Signal(ctx context.Context, hrisID, name string, payload any) error {
	id := workflows.JoinerWorkflowID(hrisID)
	if err := s.Client.SignalWorkflow(ctx, id, "", name, payload); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("%s: %w", id, ErrNoRunningJoiner)
		}
		return fmt.Errorf("signal %s to %s: %w", name, id, err)
	}
	return nil
}

// Ready reports whether the Temporal frontend answers; /readyz uses it.
func (s *TemporalStarter) Ready(ctx context.Context) error {
	if _, err := s.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal at %s: %w", s.Config.TemporalAddress, err)
	}
	return nil
}
