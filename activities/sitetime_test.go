package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// DayStart is reachable by any workflow on the task queue; it reads only the
// time zone database. A zone name that is a path, the machine's own zone or
// nonsense is refused for good (non-retryable), never read from disk as a
// file of the caller's choosing.
func TestDayStart(t *testing.T) {
	a := &Activities{}
	got, err := a.DayStart(context.Background(), DayStartInput{Zone: "Europe/Berlin", Date: "2027-03-29"})
	require.NoError(t, err)
	require.Equal(t, time.Date(2027, 3, 28, 22, 0, 0, 0, time.UTC), got, "after the DST change Berlin is UTC+2")
	for _, in := range []DayStartInput{
		{Zone: "../../../etc/passwd", Date: "2027-03-29"},
		{Zone: "Local", Date: "2027-03-29"},
		{Zone: "", Date: "2027-03-29"},
		{Zone: "Europe/Berlin", Date: "29.03.2027"},
	} {
		_, err := a.DayStart(context.Background(), in)
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae), "%+v: %v", in, err)
		require.True(t, ae.NonRetryable(), "%+v", in)
		require.Equal(t, ErrTypeInvalidJoiner, ae.Type())
	}
}
