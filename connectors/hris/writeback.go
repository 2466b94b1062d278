package hris

import (
	"context"
	"fmt"
	"slices"

	"github.com/joinery/joinery/connectors"
)

// WriteBackResult says, per field, what WriteBack did. Each slice is sorted.
type WriteBackResult struct {
	// Written lists the fields WriteBack wrote in this call.
	Written []string
	// AlreadySet lists the fields that already held the wanted value (a
	// repeated write-back, or HR typed the same value): nothing was written.
	AlreadySet []string
	// Conflicts lists the fields someone changed since the joiner started:
	// they were left as they are.
	Conflicts []FieldConflict
}

// FieldConflict is one field WriteBack refused to overwrite.
type FieldConflict struct {
	// Field is the HRIS field name.
	Field string
	// Expected is the value seen when the joiner started.
	Expected string
	// Current is the value the HRIS holds now.
	Current string
	// Wanted is the value Joinery wanted to write.
	Wanted string
}

// WriteBack writes the fields in want to employee id with a read-compare-write:
// it reads the current value of every field in want, then per field
//   - current == want: already done (a retry of this activity), nothing written;
//   - current == expected[field]: unchanged since the joiner started, written;
//   - otherwise: someone else changed it, a conflict, NOT written.
//
// A field absent from expected is expected to be empty, so by default Joinery
// only fills blank fields. Only fields listed in want are ever touched, and all
// writable fields go out in one update request.
//
// Conflicts are not an error: the result reports them and the caller decides
// (typically: record them for a human, do not fail the joiner). BambooHR has no
// conditional update, so a change that lands between the read and the write
// cannot be detected; the window is one HTTP round trip.
//
// WriteBack is idempotent: a second call with the same arguments reports
// every field it wrote the first time as AlreadySet.
func (c *Client) WriteBack(ctx context.Context, id string, want, expected map[string]string) (WriteBackResult, error) {
	const op = "write-back"
	var res WriteBackResult
	if err := checkID(op, id); err != nil {
		return res, err
	}
	if len(want) == 0 {
		return res, nil
	}
	names := make([]string, 0, len(want))
	for name := range want {
		if err := checkWritableField(op, name); err != nil {
			return res, err
		}
		names = append(names, name)
	}
	slices.Sort(names)

	current, err := c.GetFields(ctx, id, names)
	if err != nil {
		return res, err
	}
	toWrite := map[string]string{}
	for _, name := range names {
		cur, ok := current[name]
		if !ok {
			// Writing a field we cannot read would be a blind overwrite.
			return res, connectors.Permanent(System, op, TypeRejected,
				fmt.Sprintf("HRIS did not return field %q; refusing to write a field it cannot compare", name), nil)
		}
		switch {
		case cur == want[name]:
			res.AlreadySet = append(res.AlreadySet, name)
		case cur == expected[name]:
			toWrite[name] = want[name]
			res.Written = append(res.Written, name)
		default:
			res.Conflicts = append(res.Conflicts, FieldConflict{
				Field: name, Expected: expected[name], Current: cur, Wanted: want[name],
			})
		}
	}
	if len(toWrite) == 0 {
		return res, nil
	}
	if err := c.UpdateFields(ctx, id, toWrite); err != nil {
		res.Written = nil
		return res, err
	}
	return res, nil
}
