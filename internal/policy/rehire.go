package policy

import (
	"fmt"
	"strings"
	"time"
)

// Rehire modes. A rehire is a new generation of a joiner for someone whose
// earlier generation's entry Joinery created and their leaver disabled.
const (
	// RehireReenable keeps the leaver's DN: the new generation takes over
	// the entry, re-enables it, sets today's birthright groups and issues a
	// new credential.
	RehireReenable = "reenable"
	// RehireReplace would leave the old entry disabled and create a new
	// one. It is not implemented yet; a policy asking for it does not load.
	RehireReplace = "replace"
)

// Bounds of rehire.max_gap: how long after leaving a person may be rehired
// onto their old entry.
const (
	minRehireGap = 24 * time.Hour
	maxRehireGap = 3650 * 24 * time.Hour
)

type rawRehire struct {
	Mode   string `yaml:"mode"`
	MaxGap string `yaml:"max_gap"`
}

// RehirePolicy is the policy's rehire section.
type RehirePolicy struct {
	// Mode is RehireReenable.
	Mode string `json:"mode"`
	// MaxGap is the longest time between the termination date and the new
	// hire date that may still re-enable the old entry.
	MaxGap time.Duration `json:"maxGap"`
}

// RehirePlan is the rehire part of a Plan: what the approver signs for.
type RehirePlan struct {
	// PreviousJoiner is the marker (workflow ID) of the generation that
	// created the entry, e.g. "joiner-100".
	PreviousJoiner string `json:"previousJoiner"`
	// Joiner is this generation's workflow ID, e.g. "joiner-100~g2".
	Joiner string `json:"joiner"`
	// DN is the entry to re-enable.
	DN string `json:"dn"`
	// LeftOn is the earlier termination date (YYYY-MM-DD).
	LeftOn string `json:"leftOn"`
	// Mode is the policy's rehire mode.
	Mode string `json:"mode"`
}

func (b *builder) buildRehire(raw *rawRehire) {
	if raw == nil {
		return
	}
	r := &RehirePolicy{Mode: strings.TrimSpace(raw.Mode)}
	switch r.Mode {
	case RehireReenable:
	case RehireReplace:
		b.fail("rehire.mode", "%q is not implemented yet: use %q (re-enable the leaver's entry) or leave rehires to an operator", raw.Mode, RehireReenable)
	case "":
		b.fail("rehire.mode", "required: %q", RehireReenable)
	default:
		b.fail("rehire.mode", "%q: want %q", raw.Mode, RehireReenable)
	}
	if raw.MaxGap == "" {
		b.fail("rehire.max_gap", "required: how long after leaving a rehire may re-enable the old entry (e.g. 365d)")
	} else if d, err := parseDuration(raw.MaxGap); err != nil {
		b.fail("rehire.max_gap", "%v", err)
	} else if d < minRehireGap || d > maxRehireGap {
		b.fail("rehire.max_gap", "%s is outside 1d..3650d", raw.MaxGap)
	} else {
		r.MaxGap = d
	}
	b.p.rehire = r
}

// Rehire returns the policy's rehire section; ok is false when the policy
// has none (rehires then stay with an operator).
func (p *Policy) Rehire() (RehirePolicy, bool) {
	if p.rehire == nil {
		return RehirePolicy{}, false
	}
	return *p.rehire, true
}

// PlanRehire decides whether someone who left on leftOn and is rehired on
// hireDate may have the entry dn of joiner previous re-enabled by joiner
// generation, and returns the plan's rehire part. A policy without a rehire
// section, dates out of order or a gap longer than max_gap are errors.
func (p *Policy) PlanRehire(previous, generation, dn, leftOn, hireDate string) (RehirePlan, error) {
	r, ok := p.Rehire()
	if !ok {
		return RehirePlan{}, fmt.Errorf("policy %s has no rehire section: rehires are not allowed", p.Version)
	}
	left, err := time.Parse(dateLayout, leftOn)
	if err != nil {
		return RehirePlan{}, fmt.Errorf("termination date %q is not a date in YYYY-MM-DD form", leftOn)
	}
	hire, err := time.Parse(dateLayout, hireDate)
	if err != nil {
		return RehirePlan{}, fmt.Errorf("hire date %q is not a date in YYYY-MM-DD form", hireDate)
	}
	if !hire.After(left) {
		return RehirePlan{}, fmt.Errorf("hire date %s is not after the termination date %s: not a rehire", hireDate, leftOn)
	}
	if gap := hire.Sub(left); gap > r.MaxGap {
		return RehirePlan{}, fmt.Errorf("left %s, rehired %s: %d days apart, more than rehire.max_gap (%d days)",
			leftOn, hireDate, int(gap/(24*time.Hour)), int(r.MaxGap/(24*time.Hour)))
	}
	if previous == "" || generation == "" || previous == generation || dn == "" {
		return RehirePlan{}, fmt.Errorf("a rehire needs the earlier joiner, a new generation and the entry (got %q, %q, %q)", previous, generation, dn)
	}
	return RehirePlan{PreviousJoiner: previous, Joiner: generation, DN: dn, LeftOn: leftOn, Mode: r.Mode}, nil
}
