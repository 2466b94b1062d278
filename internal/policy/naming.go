package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mozillazg/go-unidecode"
	"golang.org/x/text/unicode/norm"
)

// naming is the compiled `naming` section.
type naming struct {
	usePreferred bool
	lowercase    bool
	strip        []string
	translit     map[rune]string
	maxLength    int
	maxAttempts  int
	reserved     map[string]bool
	patterns     []namePattern
	counters     []namePattern
}

// namePattern is one compiled username pattern. For counters the trailing
// {n} has been removed from segs: the base is truncated first and the
// number appended afterwards, so it is never cut off.
type namePattern struct {
	path  string
	text  string
	segs  []segment
	when  *program
	start int
	// sep is a counter's literal text just before {n} (the "." of
	// "{first}.{last}.{n}"): it is kept whole, only the names are cut.
	sep string
}

// CandidateRule records where a username candidate came from, for the audit
// trail: the pattern text, its position in the policy and, for counter
// candidates, the number used.
type CandidateRule struct {
	Candidate string `json:"candidate"`
	Pattern   string `json:"pattern"`
	Rule      string `json:"rule"`
	N         int    `json:"n,omitempty"`
}

// namePlaceholderHint lists what naming patterns may use.
const namePlaceholderHint = "use {first}, {last}, {f}, {l}, {n} (counters only) or a worker field such as {employeeNumber}"

func isNamePlaceholder(name string) bool {
	switch name {
	case "first", "last", "f", "l", "n":
		return true
	}
	return isWorkerField(name)
}

func isSeparator(r rune) bool { return r == '.' || r == '_' || r == '-' }

// usernameRune reports whether r may appear in a generated username.
func (n *naming) usernameRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9', isSeparator(r):
		return true
	case r >= 'A' && r <= 'Z':
		return !n.lowercase
	}
	return false
}

// normalize turns one HR value into username material: NFC, the policy's
// own transliterations, then unidecode for everything else (José → Jose,
// Дмитрий → Dmitrii), lowercase, and the configured characters stripped.
// Whatever remains must be username characters; otherwise the reason says
// which character is in the way rather than silently dropping it.
func (n *naming) normalize(s string) (string, string) {
	s = norm.NFC.String(s)
	s = n.stripChars(s) // before: catches e.g. ’ before it becomes '
	var b strings.Builder
	for _, r := range s {
		if rep, ok := n.translit[r]; ok {
			b.WriteString(rep)
		} else {
			b.WriteRune(r)
		}
	}
	s = strings.TrimSpace(unidecode.Unidecode(b.String()))
	if n.lowercase {
		s = strings.ToLower(s)
	}
	s = n.stripChars(s)
	if s == "" {
		return "", "transliterates to nothing usable in a username"
	}
	for _, r := range s {
		if !n.usernameRune(r) {
			return "", fmt.Sprintf("contains %q, which a username cannot hold and naming.strip does not remove", r)
		}
	}
	return s, ""
}

func (n *naming) stripChars(s string) string {
	for _, c := range n.strip {
		s = strings.ReplaceAll(s, c, "")
	}
	return s
}

// sourceField names the Worker field a name placeholder reads.
func (n *naming) sourceField(w *Worker, ph string) string {
	switch ph {
	case "first", "f":
		if n.usePreferred && w.PreferredName != "" {
			return "preferredName"
		}
		return "firstName"
	case "last", "l":
		return "lastName"
	}
	return ph
}

// candidates returns the ordered username candidates for w: applicable
// patterns first, then the first applicable counter from its start number,
// skipping reserved names and duplicates, at most maxAttempts in all.
func (n *naming) candidates(w *Worker, vars map[string]any) ([]CandidateRule, []error) {
	var errs []error
	var patterns []namePattern
	for _, p := range n.patterns {
		ok, err := p.applies(vars)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			patterns = append(patterns, p)
		}
	}
	var counter *namePattern
	for i := range n.counters {
		ok, err := n.counters[i].applies(vars)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			counter = &n.counters[i]
			break
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// Normalise each field the applicable patterns need, once; report each
	// unusable field once.
	values := map[string]string{}
	failed := map[string]bool{}
	use := func(p namePattern) {
		for _, s := range p.segs {
			if s.ph == "" {
				continue
			}
			field := n.sourceField(w, s.ph)
			if _, done := values[field]; done || failed[field] {
				continue
			}
			v, reason := n.normalize(w.field(field))
			if reason != "" {
				failed[field] = true
				errs = append(errs, invalid(field, "%s", reason))
				continue
			}
			values[field] = v
		}
	}
	for _, p := range patterns {
		use(p)
	}
	if counter != nil {
		use(*counter)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	render := func(p namePattern) string {
		var b strings.Builder
		for _, s := range p.segs {
			switch s.ph {
			case "":
				b.WriteString(s.lit)
			case "f", "l":
				b.WriteString(values[n.sourceField(w, s.ph)][:1])
			default:
				b.WriteString(values[n.sourceField(w, s.ph)])
			}
		}
		return collapseSeparators(b.String())
	}

	var out []CandidateRule
	seen := map[string]bool{}
	add := func(c CandidateRule) {
		if c.Candidate == "" || seen[c.Candidate] || n.reserved[strings.ToLower(c.Candidate)] || len(out) >= n.maxAttempts {
			return
		}
		seen[c.Candidate] = true
		out = append(out, c)
	}
	for _, p := range patterns {
		s := strings.TrimLeftFunc(render(p), isSeparator)
		s = strings.TrimRightFunc(truncate(s, n.maxLength), isSeparator)
		add(CandidateRule{Candidate: s, Pattern: p.text, Rule: p.path})
	}
	if counter != nil {
		base := strings.TrimLeftFunc(render(*counter), isSeparator)
		// Each skip (reserved or duplicate) costs one iteration, so this
		// bound always leaves room for maxAttempts usable numbers.
		limit := n.maxAttempts + len(n.reserved) + len(patterns) + 1
		for i := 0; i < limit && len(out) < n.maxAttempts; i++ {
			num := strconv.Itoa(counter.start + i)
			room := n.maxLength - len(counter.sep) - len(num)
			if room < 1 {
				break
			}
			b := strings.TrimRightFunc(truncate(base, room), isSeparator)
			if b == "" {
				break
			}
			add(CandidateRule{Candidate: b + counter.sep + num, Pattern: counter.text, Rule: counter.path, N: counter.start + i})
		}
	}
	if len(out) == 0 {
		return nil, []error{policyErr("naming", "no username candidate could be formed for this joiner (kind %q): no pattern applies or every candidate is reserved", w.Kind)}
	}
	return out, nil
}

func (p namePattern) applies(vars map[string]any) (bool, error) {
	if p.when == nil {
		return true, nil
	}
	return p.when.evalBool(vars)
}

// truncate cuts s to at most max bytes; s is ASCII by construction.
func truncate(s string, max int) string {
	if len(s) > max {
		return s[:max]
	}
	return s
}

// collapseSeparators keeps only the first of adjacent separators, so a
// value like "st.-john" next to a "." literal cannot produce "st..john".
func collapseSeparators(s string) string {
	var b strings.Builder
	prevSep := false
	for _, r := range s {
		sep := isSeparator(r)
		if sep && prevSep {
			continue
		}
		prevSep = sep
		b.WriteRune(r)
	}
	return b.String()
}

// checkPatternLiterals reports literal text a username could not hold.
func (n *naming) checkPatternLiterals(segs []segment) error {
	for _, s := range segs {
		for _, r := range s.lit {
			if !n.usernameRune(r) {
				return fmt.Errorf("literal %q cannot appear in a username (allowed: a-z, 0-9, '.', '_', '-')", r)
			}
		}
	}
	if !slices.ContainsFunc(segs, func(s segment) bool { return s.ph != "" && s.ph != "n" }) {
		return fmt.Errorf("must use at least one placeholder besides {n}, or every joiner would get the same name")
	}
	return nil
}
