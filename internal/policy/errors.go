package policy

import (
	"errors"
	"fmt"
)

// PolicyError is a problem with the policy itself: a file that does not
// parse or validate, or a condition that fails while a plan is evaluated.
// Path names the offending field, e.g. `birthright[2].when`.
type PolicyError struct {
	Path   string
	Reason string
}

// Error renders "path: reason".
func (e *PolicyError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// ValidationError is a problem with a joiner's HR record under a policy.
// Field is the JSON name of the Worker field (e.g. `hireDate`). Plan joins
// several of them with errors.Join; find them with errors.As or Problems.
type ValidationError struct {
	Field  string
	Reason string
}

// Error renders "field: reason".
func (e *ValidationError) Error() string {
	return e.Field + ": " + e.Reason
}

func policyErr(path, format string, args ...any) error {
	return &PolicyError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Problems flattens an error tree built with errors.Join into its leaves, in
// order, so callers (the CLI, the workflow's failure message) can list every
// problem on its own line.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// IsValidationError reports whether err contains a *ValidationError, i.e. the
// joiner's record (not the policy) is at fault.
func IsValidationError(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}
