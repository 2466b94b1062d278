package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/policy"
)

// DayStartInput asks when a calendar day begins at a joiner's site.
type DayStartInput struct {
	// Zone is the IANA zone the joiner's plan recorded (policy sites).
	Zone string `json:"zone"`
	// Date is the calendar day, YYYY-MM-DD.
	Date string `json:"date"`
}

// DayStart returns the instant local midnight of in.Date falls on in
// in.Zone (policy.DayStart: DST-aware, a missing midnight starts the day at
// the transition). The plan records these instants for its own dates; the
// workflow asks here for a date that came later (a start HR moved, an
// extended end), so the time zone database is read by an activity and the
// answer is recorded in history: a replay, on any worker with any tzdata
// version, waits for the same instant.
//
// Any workflow on the task queue can call it; it reads nothing but the time
// zone database and changes nothing, so it has nothing to give away.
func (a *Activities) DayStart(_ context.Context, in DayStartInput) (time.Time, error) {
	t, err := policy.ZoneDayStart(in.Zone, in.Date)
	if err != nil {
		return time.Time{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidJoiner, nil)
	}
	return t.UTC(), nil
}
