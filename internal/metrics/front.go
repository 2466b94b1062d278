package metrics

import (
	"context"
	"log/slog"
	"time"
)

// ServeIntake starts the intake's metrics on addr ("off": none) and
// returns the logger the intake must log through: its access log is what
// joinery_intake_requests_total counts. hold is the intake's blast-radius
// hold (internal/intake HoldFor), queried every interval for
// joinery_intake_held. The listener ends with ctx.
func ServeIntake(ctx context.Context, addr string, logger *slog.Logger, hold HoldViewer, interval time.Duration) (*slog.Logger, error) {
	addr, on := Addr(addr)
	if !on {
		return logger, nil
	}
	reg := NewRegistry()
	h, err := IntakeTap(reg.Registerer(), logger.Handler())
	if err != nil {
		return nil, err
	}
	hs := &HoldState{Hold: hold, Interval: interval, Logger: logger}
	if err := reg.Registerer().Register(hs); err != nil {
		return nil, err
	}
	ln, ok := ListenOrLog(addr, "JOINERY_INTAKE_METRICS_ADDR", logger)
	if !ok {
		return slog.New(h), nil
	}
	go hs.Run(ctx)
	go func() { _ = reg.Serve(ctx, ln, logger.With("server", "intake")) }()
	return slog.New(h), nil
}

// ServeInbox starts the inbox's metrics on addr ("off": none) and returns
// the logger the inbox must log through (joinery_inbox_events_total counts
// its records). The listener ends with ctx.
func ServeInbox(ctx context.Context, addr string, logger *slog.Logger) (*slog.Logger, error) {
	addr, on := Addr(addr)
	if !on {
		return logger, nil
	}
	reg := NewRegistry()
	h, err := InboxTap(reg.Registerer(), logger.Handler())
	if err != nil {
		return nil, err
	}
	ln, ok := ListenOrLog(addr, "JOINERY_INBOX_METRICS_ADDR", logger)
	if !ok {
		return slog.New(h), nil
	}
	go func() { _ = reg.Serve(ctx, ln, logger.With("server", "inbox")) }()
	return slog.New(h), nil
}
