package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
)

// utc is a shorthand for instants in the tests below.
func utc(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func ptr(t time.Time) *time.Time { return &t }

// berlin gives the employee fixture a site in Berlin, as the policy's
// plan would record it (UTC+1 in November).
func (f *fixture) berlin() {
	f.plan.TimeZone = "Europe/Berlin"
	f.plan.HireDate, f.plan.ProvisionDate = testHire, "2026-11-24"
	f.plan.ProvisionAt, f.plan.StartsAt = ptr(utc(2026, 11, 23, 23)), ptr(utc(2026, 11, 30, 23))
}

// hrHireDate makes FetchJoiner answer with whatever *hire holds (HR moves
// the date by changing it).
func (f *fixture) hrHireDate(hire *string) {
	f.env.OnActivity(f.acts.FetchJoiner, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.FetchInput) (policy.Worker, error) {
			w := f.worker
			w.HireDate = *hire
			return w, nil
		})
}

// Provisioning and the end of the Provisioned hold happen at local midnight
// of the site (Berlin: 23:00Z the day before), not 00:00 UTC.
func TestProvisioningAtLocalMidnightOfTheSite(t *testing.T) {
	f := newFixture(t)
	f.berlin()
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, StageAwaitingApproval, st.Stage, "asked at 23:00Z, an hour before UTC midnight")
		require.Equal(t, utc(2026, 11, 23, 23), st.ProvisionAt.UTC())
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	}, utc(2026, 11, 23, 23).Add(30*time.Minute).Sub(t0))
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, utc(2026, 11, 23, 23), f.asked["approval-request"].UTC())
	require.Equal(t, utc(2026, 11, 30, 23), f.env.Now().UTC(), "the hold ends as the first day begins in Berlin")
}

// A start HR moves across the DST change: the new provisioning instant is
// computed for its own date (the DayStart activity: Berlin is UTC+2 from
// 2027-03-28), not by adding days to the old one.
func TestMovedStartUsesTheNewDatesOwnOffset(t *testing.T) {
	f := newFixture(t)
	f.plan.TimeZone = "Europe/Berlin"
	f.plan.HireDate, f.plan.ProvisionDate = "2027-03-20", "2027-03-13"
	f.plan.ProvisionAt, f.plan.StartsAt = ptr(utc(2027, 3, 12, 23)), ptr(utc(2027, 3, 19, 23))
	hire := "2027-03-20"
	f.worker.HireDate = hire
	f.hrHireDate(&hire)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		require.Equal(t, utc(2027, 3, 12, 23), f.status().ProvisionAt.UTC())
		hire = "2027-04-05"
		f.signal(SignalStartDateChange, StartDateSignal{HireDate: "2027-04-05", By: "hr.partner"})
	}, 24*time.Hour)
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, StageWaitingStartDate, st.Stage)
		require.Equal(t, utc(2027, 3, 28, 22), st.ProvisionAt.UTC(), "2027-03-29 00:00 +02:00")
	}, 25*time.Hour)
	f.env.RegisterDelayedCallback(func() {
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	}, utc(2027, 3, 28, 23).Sub(t0))
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, utc(2027, 3, 28, 22), f.asked["approval-request"].UTC())
	require.Equal(t, utc(2027, 4, 4, 22), f.env.Now().UTC(), "held until 2027-04-05 00:00 in Berlin")
}

// Time-bound access ends at local midnight after the end date, for the
// end date in force: the plan's, or an extension's across the DST change.
func TestExpiryAtLocalMidnightAcrossDST(t *testing.T) {
	for name, tc := range map[string]struct {
		extendTo string
		want     time.Time
	}{
		"the plan's end date (UTC+1)":      {"", utc(2026, 12, 31, 23)},
		"extended past the change (UTC+2)": {"2027-03-28", utc(2027, 3, 28, 22)},
		"extended to the day before":       {"2027-03-27", utc(2027, 3, 27, 23)},
	} {
		t.Run(name, func(t *testing.T) {
			f, in := nhiFixture(t)
			f.plan.TimeZone, f.plan.ExpiresAt = "Europe/Berlin", ptr(utc(2026, 12, 31, 23))
			var revokedAt time.Time
			f.env.OnActivity(f.acts.RevokeWorkload, mock.Anything, mock.Anything).Run(func(mock.Arguments) {
				revokedAt = f.env.Now()
			}).Return(nil)
			f.nhiMocks()
			bothApprove(f)
			if tc.extendTo != "" {
				f.signalAt(5*24*time.Hour, SignalExtend, ExtendSignal{EndDate: tc.extendTo, By: "ada.lovelace"})
			}
			res, err := f.runInput(in)
			require.NoError(t, err)
			require.Equal(t, OutcomeExpired, res.Outcome)
			require.Equal(t, tc.want, revokedAt.UTC())
			require.Equal(t, tc.want.Add(-14*24*time.Hour), f.asked["expiry-reminder"].UTC(), "the reminder counts back from the same instant")
		})
	}
}

// HR moves the start of a contractor: past the approved end date, or so
// early that the end date lies beyond the kind's maximum lifetime, is
// refused, recorded, told to the owner, and changes nothing; a move within
// both is accepted.
func TestStartMovesAreCheckedAgainstEndDateAndLifetime(t *testing.T) {
	f := newFixture(t)
	f.worker.Kind, f.worker.EndDate = policy.KindContractor, "2026-12-31"
	f.plan.Kind, f.plan.EndDate, f.plan.Owner = policy.KindContractor, "2026-12-31", "ada.lovelace"
	f.plan.HireDate, f.plan.MaxLifetime = testHire, 40*24*time.Hour
	hire := testHire
	f.hrHireDate(&hire)
	f.happy()
	f.provisioning()
	move := func(at time.Duration, to string) {
		f.env.RegisterDelayedCallback(func() {
			hire = to
			f.signal(SignalStartDateChange, StartDateSignal{HireDate: to, By: "hr.partner"})
		}, at)
	}
	move(time.Hour, "2027-01-05")   // after the end date
	move(2*time.Hour, "2026-11-20") // 41 days before the end
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, utc(2026, 11, 24, 0), st.ProvisionAt.UTC(), "refused moves change nothing")
		var refused []string
		for _, e := range st.Events {
			if strings.HasPrefix(e.What, "REFUSED the start-date move") {
				refused = append(refused, e.What)
			}
		}
		require.Len(t, refused, 2)
		require.Contains(t, refused[0], "the new start 2027-01-05 is after the end date 2026-12-31")
		require.Contains(t, refused[1], "the end date 2026-12-31 is 41 days after the new start 2026-11-20; kind contractor may last at most 40 days")
		require.Equal(t, 2, strings.Count(strings.Join(f.notes, ","), "outcome:ada.lovelace"), "the owner hears of each")
	}, 3*time.Hour)
	move(4*time.Hour, "2026-12-10") // within both
	f.env.RegisterDelayedCallback(func() {
		require.Equal(t, utc(2026, 12, 3, 0), f.status().ProvisionAt.UTC(), "the accepted move moved the timer")
		f.signal(SignalRescind, RescindSignal{By: "hr.partner", Reason: "done testing"})
	}, 5*time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.Empty(t, f.calls, "nothing was provisioned")
}
