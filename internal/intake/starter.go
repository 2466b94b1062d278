package intake

import (
	"context"
	"fmt"

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
// started, or already done). It is run's, so every caller tells it apart the
// same way.
var ErrNoRunningJoiner = run.ErrNoRunningJoiner

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
