package policy

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
	"unicode/utf8"
)

// The intake section of a policy file:
//
//	intake:
//	  # A hire date up to this many days in the past still counts as a
//	  # pending hire (0: the hire date is today or later).
//	  max_days_since_hire: 0
//	  blast_radius:
//	    window: 1h        # sliding window the counts below apply to
//	    max_starts: 50    # joiner starts the intake lets through per window
//	    max_rescinds: 10  # rescinds (terminations before the start) per window
//	    max_held: 2000    # the hold queue's bound; past it the intake answers 503
//
// It is read by the HR intake and the start path (ParseIntake, LoadIntake)
// without compiling the rest of the policy, so that a start does not pay for
// CEL compilation.

type rawIntake struct {
	MaxDaysSinceHire *int            `yaml:"max_days_since_hire"`
	BlastRadius      *rawBlastRadius `yaml:"blast_radius"`
}

type rawBlastRadius struct {
	Window      string `yaml:"window"`
	MaxStarts   *int   `yaml:"max_starts"`
	MaxRescinds *int   `yaml:"max_rescinds"`
	MaxHeld     *int   `yaml:"max_held"`
}

// Limits of the intake section. Values outside them are almost certainly
// typos (a window of 7h meant as 7d is allowed; 700d is not).
const (
	maxDaysSinceHireLimit = 365
	minBlastWindow        = time.Minute
	maxBlastWindow        = 30 * 24 * time.Hour
	maxBlastCount         = 1_000_000
	// DefaultMaxHeld bounds the hold queue when the policy does not. The
	// queue travels in one workflow's state (and its continue-as-new
	// input), which Temporal caps at a few MB: 2000 entries stay far below.
	DefaultMaxHeld = 2000
	maxMaxHeld     = 5000
)

// Intake is the parsed intake section plus what the intake needs from the
// rest of the policy.
type Intake struct {
	// MaxDaysSinceHire is how far in the past a hire date may be for the
	// record to still count as a pending hire.
	MaxDaysSinceHire int
	// BlastRadius is the mass-event guard; nil when the policy sets none.
	BlastRadius *BlastRadius
	// WriteBack lists the HRIS fields Joinery owns (the writeback section),
	// sorted: a record with any of them set was provisioned already.
	WriteBack []string
}

// BlastRadius bounds how many joiner starts and rescinds the intake lets
// through per sliding window before it holds the rest for an operator.
type BlastRadius struct {
	Window      time.Duration
	MaxStarts   int
	MaxRescinds int
	MaxHeld     int
}

// LoadIntake reads the intake section of a policy file.
func LoadIntake(path string) (Intake, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Intake{}, fmt.Errorf("read policy: %w", err)
	}
	return ParseIntake(data)
}

// ParseIntake decodes a policy file's intake section (and the writeback
// field names) and validates it; problems name their field path like
// Parse's do. The rest of the file is only shape-checked.
func ParseIntake(data []byte) (Intake, error) {
	if !utf8.Valid(data) {
		return Intake{}, policyErr("", "policy file is not valid UTF-8")
	}
	raw, err := decodeYAML(data)
	if err != nil {
		return Intake{}, err
	}
	in, errs := buildIntake(raw)
	if len(errs) > 0 {
		return Intake{}, errors.Join(errs...)
	}
	return in, nil
}

// buildIntake validates raw's intake section. Parse can report the same
// problems by appending its errors.
func buildIntake(raw *rawPolicy) (Intake, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, policyErr(path, format, args...))
	}
	var in Intake
	for name := range raw.WriteBack {
		in.WriteBack = append(in.WriteBack, name)
	}
	sort.Strings(in.WriteBack)
	ri := raw.Intake
	if ri.MaxDaysSinceHire != nil {
		d := *ri.MaxDaysSinceHire
		if d < 0 || d > maxDaysSinceHireLimit {
			fail("intake.max_days_since_hire", "%d is outside 0..%d", d, maxDaysSinceHireLimit)
		}
		in.MaxDaysSinceHire = d
	}
	if rb := ri.BlastRadius; rb != nil {
		b := &BlastRadius{MaxHeld: DefaultMaxHeld}
		switch d, err := parseDuration(rb.Window); {
		case rb.Window == "":
			fail("intake.blast_radius.window", "required")
		case err != nil:
			fail("intake.blast_radius.window", "%v", err)
		case d < minBlastWindow || d > maxBlastWindow:
			fail("intake.blast_radius.window", "%s is outside 1m..30d", rb.Window)
		default:
			b.Window = d
		}
		count := func(path string, v *int, dst *int, min, max int) {
			if v == nil {
				fail(path, "required")
				return
			}
			if *v < min || *v > max {
				fail(path, "%d is outside %d..%d", *v, min, max)
				return
			}
			*dst = *v
		}
		// 0 is allowed on purpose: every start (or rescind) then waits for
		// an operator.
		count("intake.blast_radius.max_starts", rb.MaxStarts, &b.MaxStarts, 0, maxBlastCount)
		count("intake.blast_radius.max_rescinds", rb.MaxRescinds, &b.MaxRescinds, 0, maxBlastCount)
		if rb.MaxHeld != nil {
			count("intake.blast_radius.max_held", rb.MaxHeld, &b.MaxHeld, 1, maxMaxHeld)
		}
		in.BlastRadius = b
	}
	return in, errs
}
