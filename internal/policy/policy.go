package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
)

// Policy is a parsed, fully validated joiner policy. It is immutable and safe
// for concurrent use; build it once at worker start with Load.
type Policy struct {
	// Label is the policy's own name, e.g. "default".
	Label string
	// Version identifies the exact policy text: "label@sha256:<12 hex>" of
	// the canonical file bytes. Every plan records it.
	Version string
	// Groups is the catalogue of groups this policy may grant, in file order.
	Groups []string

	naming     naming
	kinds      map[string]kindSpec
	birthright []birthrightRule
	attributes []valueRule
	routes     []route
	writeback  []valueRule
	leadDays   int
	// rescindGrace keeps a provisioned employee joiner open (and rescind
	// possible) this long after the hire date; stuckAfter is when a
	// compensation that keeps failing is reported as stuck.
	rescindGrace time.Duration
	stuckAfter   time.Duration
	wrapTTL      time.Duration
	exceptions   []exception
	// sites resolves a joiner's location to its time zone (sites.go).
	sites sites
	// rehire is the rehire section (rehire.go); nil: rehires are refused.
	rehire *RehirePolicy
}

type kindSpec struct {
	ou           string
	required     []string
	maxLifetime  time.Duration
	environments []string
	// groups, when restricted, is the allow-list of groups a joiner of this
	// kind may receive; anything else a rule grants is withheld.
	restricted bool
	groups     []string
	// workload is the Vault AppRole spec for non-human kinds (nil: none).
	workload       *workloadSpec
	expiryReminder time.Duration
}

type birthrightRule struct {
	name  string
	group string
	when  *program
}

type valueRule struct {
	name string
	tmpl []segment // set for templates
	expr *program  // set for CEL expressions
	text string    // source, for the audit
}

type route struct {
	name           string
	when           *program
	approver       string
	secondApprover string
	escalateTo     string
	delegates      []string
	reminderAfter  time.Duration
	escalateAfter  time.Duration
	timeout        time.Duration
	breakGlass     bool
}

type exception struct {
	name     string
	when     *program
	add      []string
	remove   []string
	approval string
}

// Approver references a route may use instead of a literal username.
const (
	ApproverManager         = "manager"
	ApproverSponsor         = "sponsor"
	ApproverManagersManager = "managers-manager"
)

// Limits that keep a policy sane. They are deliberately generous; values
// outside them are almost certainly typos (7h for 7d, 720 for 72h).
const (
	minMaxLength      = 3
	maxMaxLength      = 64
	defaultMaxLength  = 20
	maxMaxAttempts    = 100
	defaultMaxAttempt = 10
	maxCounterStart   = 9999
	defaultStart      = 2
	maxLeadDays       = 365
	maxApprovalWait   = 90 * 24 * time.Hour
	minWrapTTL        = time.Minute
	maxWrapTTL        = 30 * 24 * time.Hour
)

var (
	labelRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	groupRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	ouRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)
	attrRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)
	hrisFldRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
)

// Directory attributes the policy must not set (lowercase): the directory
// connector owns the entry's identity (uid, employeeNumber keyed on the HR
// id, ...) and structure, group membership comes from grants, and
// credentials only ever come from Vault. Mirrors the protected lists in
// connectors/directory/profile.go, so the mistake surfaces when the policy
// loads rather than when the first joiner is created.
var forbiddenAttributes = []string{
	"objectclass", "uid", "employeenumber", "employeeid", "uidnumber", "gidnumber",
	"userpassword", "unicodepwd", "memberof", "entrydn", "distinguishedname",
	"samaccountname", "userprincipalname", "useraccountcontrol", "objectsid",
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(data)
}

// Canonical returns the bytes a policy version is computed from: without a
// UTF-8 BOM, with LF line endings and exactly one trailing newline, so a
// checkout with CRLF endings or an editor's final newline does not change
// the version, while every meaningful edit (comments included) does.
func Canonical(data []byte) []byte {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	data = bytes.TrimRight(data, "\n")
	return append(slices.Clip(data), '\n')
}

// Parse validates and compiles a policy. It reports every problem, not just
// the first, as *PolicyError values joined with errors.Join, each naming the
// field path (e.g. `birthright[2].when: undeclared reference to
// 'worker.dept'`).
func Parse(data []byte) (*Policy, error) {
	if !utf8.Valid(data) {
		return nil, policyErr("", "policy file is not valid UTF-8")
	}
	raw, err := decodeYAML(data)
	if err != nil {
		return nil, err
	}
	env, err := newCELEnv()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	b := &builder{env: env, p: &Policy{}}
	b.build(raw)
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	sum := sha256.Sum256(Canonical(data))
	b.p.Version = b.p.Label + "@sha256:" + hex.EncodeToString(sum[:])[:12]
	return b.p, nil
}

// builder accumulates the compiled policy and every problem found.
type builder struct {
	env    *cel.Env
	p      *Policy
	errs   []error
	groups map[string]bool
	routes map[string]bool
}

func (b *builder) fail(path, format string, args ...any) {
	b.errs = append(b.errs, policyErr(path, format, args...))
}

func (b *builder) add(err error) {
	if err != nil {
		b.errs = append(b.errs, err)
	}
}

// cond compiles an optional bool condition.
func (b *builder) cond(path, text string) *program {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	prg, err := compile(b.env, path, text, cel.BoolType)
	b.add(err)
	return prg
}

func (b *builder) build(raw *rawPolicy) {
	p := b.p
	switch {
	case raw.Label == "":
		b.fail("label", "required")
	case !labelRE.MatchString(raw.Label):
		b.fail("label", "%q must be lowercase letters, digits, '.', '_' or '-' (at most 63)", raw.Label)
	}
	p.Label = raw.Label
	b.buildGroups(raw.Groups)
	b.buildNaming(raw.Naming)
	b.buildKinds(raw.Kinds)
	b.buildBirthright(raw.Birthright)
	p.attributes = b.buildValues("attributes", raw.Attributes, attrRE, forbiddenAttributes)
	b.buildRoutes(raw.Approval.Routes)
	p.writeback = b.buildValues("writeback", raw.WriteBack, hrisFldRE, nil)
	b.buildExceptions(raw.Exceptions)
	b.buildSites(raw.Sites)
	b.buildRehire(raw.Rehire)
	// The intake section is read by the intake itself (LoadIntake); checking
	// it here too makes `policy check` and the worker refuse a bad one.
	_, intakeErrs := buildIntake(raw)
	b.errs = append(b.errs, intakeErrs...)

	if raw.Provisioning.LeadDays != nil {
		d := *raw.Provisioning.LeadDays
		if d < 0 || d > maxLeadDays {
			b.fail("provisioning.lead_days", "%d is outside 0..%d", d, maxLeadDays)
		}
		p.leadDays = d
	}
	p.rescindGrace, p.stuckAfter = 24*time.Hour, time.Hour
	for _, f := range []struct {
		path, v  string
		to       *time.Duration
		min, max time.Duration
	}{
		{"provisioning.rescind_grace", raw.Provisioning.RescindGrace, &p.rescindGrace, 0, 90 * 24 * time.Hour},
		{"provisioning.compensation_stuck_after", raw.Provisioning.StuckAfter, &p.stuckAfter, time.Minute, 30 * 24 * time.Hour},
	} {
		if f.v == "" {
			continue
		}
		if d, err := parseDuration(f.v); err != nil {
			b.fail(f.path, "%v", err)
		} else if d < f.min || d > f.max {
			b.fail(f.path, "%s is outside %s..%s", f.v, f.min, f.max)
		} else {
			*f.to = d
		}
	}
	if raw.Credentials.WrapTTL == "" {
		b.fail("credentials.wrap_ttl", "required")
	} else if d, err := parseDuration(raw.Credentials.WrapTTL); err != nil {
		b.fail("credentials.wrap_ttl", "%v", err)
	} else if d < minWrapTTL || d > maxWrapTTL {
		b.fail("credentials.wrap_ttl", "%s is outside %s..%s", raw.Credentials.WrapTTL, minWrapTTL, "30d")
	} else {
		p.wrapTTL = d
	}
}

func (b *builder) buildGroups(groups []string) {
	b.groups = map[string]bool{}
	if len(groups) == 0 {
		b.fail("groups", "required: list every group this policy may grant")
	}
	for i, g := range groups {
		path := fmt.Sprintf("groups[%d]", i)
		switch {
		case !groupRE.MatchString(g):
			b.fail(path, "%q is not a valid group name (lowercase letters, digits, '.', '_', '-')", g)
		case b.groups[g]:
			b.fail(path, "duplicate group %q", g)
		default:
			b.groups[g] = true
			b.p.Groups = append(b.p.Groups, g)
		}
	}
}

// group checks a group reference against the catalogue.
func (b *builder) group(path, g string) bool {
	if g == "" {
		b.fail(path, "required")
		return false
	}
	if !b.groups[g] {
		msg := fmt.Sprintf("unknown group %q: not declared under groups", g)
		if s := suggest(g, b.p.Groups); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		b.fail(path, "%s", msg)
		return false
	}
	return true
}

func (b *builder) buildNaming(raw rawNaming) {
	n := &b.p.naming
	n.usePreferred = raw.UsePreferredName
	n.lowercase = raw.Lowercase == nil || *raw.Lowercase
	n.maxLength = defaultMaxLength
	if raw.MaxLength != nil {
		n.maxLength = *raw.MaxLength
		if n.maxLength < minMaxLength || n.maxLength > maxMaxLength {
			b.fail("naming.max_length", "%d is outside %d..%d", n.maxLength, minMaxLength, maxMaxLength)
		}
	}
	n.maxAttempts = defaultMaxAttempt
	if raw.MaxAttempts != nil {
		n.maxAttempts = *raw.MaxAttempts
		if n.maxAttempts < 1 || n.maxAttempts > maxMaxAttempts {
			b.fail("naming.max_attempts", "%d is outside 1..%d", n.maxAttempts, maxMaxAttempts)
		}
	}
	for i, s := range raw.Strip {
		if s == "" {
			b.fail(fmt.Sprintf("naming.strip[%d]", i), "empty string")
			continue
		}
		n.strip = append(n.strip, s)
	}
	n.translit = map[rune]string{}
	for _, k := range sortedKeys(raw.Transliterate) {
		if utf8.RuneCountInString(k) != 1 {
			b.fail("naming.transliterate."+k, "key must be exactly one character")
			continue
		}
		r, _ := utf8.DecodeRuneInString(k)
		n.translit[r] = raw.Transliterate[k]
	}
	n.reserved = map[string]bool{}
	for i, r := range raw.Reserved {
		if strings.TrimSpace(r) == "" {
			b.fail(fmt.Sprintf("naming.reserved[%d]", i), "empty name")
			continue
		}
		n.reserved[strings.ToLower(r)] = true
	}
	if len(raw.Patterns) == 0 {
		b.fail("naming.patterns", "required: at least one username pattern")
	}
	for i, rp := range raw.Patterns {
		path := fmt.Sprintf("naming.patterns[%d]", i)
		if rp.Start != nil {
			b.fail(path+".start", "only counters have a start number")
		}
		if np, ok := b.namePattern(path, rp, false); ok {
			n.patterns = append(n.patterns, np)
		}
	}
	for i, rp := range raw.Counters {
		path := fmt.Sprintf("naming.counters[%d]", i)
		if np, ok := b.namePattern(path, rp, true); ok {
			n.counters = append(n.counters, np)
		}
	}
}

func (b *builder) namePattern(path string, rp rawPattern, counter bool) (namePattern, bool) {
	np := namePattern{path: path, text: rp.Pattern, start: defaultStart}
	np.when = b.cond(path+".when", rp.When)
	if rp.Pattern == "" {
		b.fail(path+".pattern", "required")
		return np, false
	}
	segs, err := parseTemplate(rp.Pattern, isNamePlaceholder, namePlaceholderHint)
	if err != nil {
		b.fail(path+".pattern", "%v", err)
		return np, false
	}
	ns := 0
	for _, s := range segs {
		if s.ph == "n" {
			ns++
		}
	}
	switch {
	case counter && (ns != 1 || segs[len(segs)-1].ph != "n"):
		b.fail(path+".pattern", "a counter must end with {n} and use it once, e.g. {first}.{last}{n}")
		return np, false
	case !counter && ns > 0:
		b.fail(path+".pattern", "{n} belongs in naming.counters, not in patterns")
		return np, false
	}
	if counter {
		segs = segs[:len(segs)-1]
		if len(segs) > 0 && segs[len(segs)-1].ph == "" {
			np.sep = segs[len(segs)-1].lit
		}
		if rp.Start != nil {
			np.start = *rp.Start
			if np.start < 0 || np.start > maxCounterStart {
				b.fail(path+".start", "%d is outside 0..%d", np.start, maxCounterStart)
			}
		}
	}
	if err := b.p.naming.checkPatternLiterals(segs); err != nil {
		b.fail(path+".pattern", "%v", err)
		return np, false
	}
	if np.sep != "" {
		segs = segs[:len(segs)-1]
	}
	np.segs = segs
	return np, true
}

func (b *builder) buildKinds(raw map[string]rawKind) {
	b.p.kinds = map[string]kindSpec{}
	if len(raw) == 0 {
		b.fail("kinds", "required: declare at least one of %s", strings.Join(knownKinds, ", "))
	}
	for _, name := range sortedKeys(raw) {
		path := "kinds." + name
		rk := raw[name]
		if !slices.Contains(knownKinds, name) {
			b.fail(path, "unknown kind %q; kinds are %s", name, strings.Join(knownKinds, ", "))
			continue
		}
		k := kindSpec{ou: rk.OU}
		switch {
		case rk.OU == "":
			b.fail(path+".ou", "required")
		case !ouRE.MatchString(rk.OU):
			b.fail(path+".ou", "%q is not a valid organizational unit name", rk.OU)
		}
		seen := map[string]bool{}
		for i, f := range rk.Required {
			fp := fmt.Sprintf("%s.required[%d]", path, i)
			switch {
			case !isWorkerField(f):
				msg := fmt.Sprintf("unknown worker field %q", f)
				if s := suggest(f, WorkerFieldNames()); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				b.fail(fp, "%s", msg)
			case seen[f]:
				b.fail(fp, "duplicate field %q", f)
			default:
				seen[f] = true
				k.required = append(k.required, f)
			}
		}
		if rk.MaxLifetime != "" {
			d, err := parseDuration(rk.MaxLifetime)
			switch {
			case err != nil:
				b.fail(path+".max_lifetime", "%v", err)
			case d < 24*time.Hour || d%(24*time.Hour) != 0:
				b.fail(path+".max_lifetime", "must be a whole number of days (at least 1d), got %s", rk.MaxLifetime)
			default:
				k.maxLifetime = d
			}
		}
		envs := map[string]bool{}
		for i, e := range rk.Environments {
			ep := fmt.Sprintf("%s.environments[%d]", path, i)
			switch {
			case strings.TrimSpace(e) == "":
				b.fail(ep, "empty environment name")
			case envs[e]:
				b.fail(ep, "duplicate environment %q", e)
			default:
				envs[e] = true
				k.environments = append(k.environments, e)
			}
		}
		if rk.Groups != nil {
			k.restricted = true
			for i, g := range *rk.Groups {
				if b.group(fmt.Sprintf("%s.groups[%d]", path, i), g) {
					k.groups = append(k.groups, g)
				}
			}
		} else if !IsHumanKind(name) {
			// Least privilege for machines is not optional: the policy must
			// say which groups they may ever hold (possibly none: []).
			b.fail(path+".groups", "required for non-human kinds: list the groups it may hold ([] for none)")
		}
		if rk.Vault != nil && IsHumanKind(name) {
			b.fail(path+".vault", "only non-human kinds get a workload AppRole; people get an initial credential")
		}
		k.workload = b.buildWorkload(path+".vault", rk.Vault)
		k.expiryReminder = 7 * 24 * time.Hour
		if rk.ExpiryReminder != "" {
			d, err := parseDuration(rk.ExpiryReminder)
			if err != nil || d <= 0 {
				b.fail(path+".expiry_reminder", "want a positive duration such as 7d, got %q", rk.ExpiryReminder)
			} else {
				k.expiryReminder = d
			}
		}
		b.p.kinds[name] = k
	}
}

func (b *builder) buildBirthright(raw []rawBirthright) {
	names := map[string]bool{}
	for i, r := range raw {
		path := fmt.Sprintf("birthright[%d]", i)
		b.ruleName(path+".name", r.Name, names)
		b.group(path+".group", r.Group)
		b.p.birthright = append(b.p.birthright, birthrightRule{name: r.Name, group: r.Group, when: b.cond(path+".when", r.When)})
	}
}

func (b *builder) ruleName(path, name string, seen map[string]bool) {
	switch {
	case name == "":
		b.fail(path, "required")
	case !ruleNameRE.MatchString(name):
		b.fail(path, "%q must be letters, digits, '.', '_' or '-'", name)
	case seen[name]:
		b.fail(path, "duplicate name %q", name)
	}
	seen[name] = true
}

// buildValues compiles attribute or write-back values, in name order so
// errors and evaluation are deterministic.
func (b *builder) buildValues(section string, raw map[string]rawValue, nameRE *regexp.Regexp, forbidden []string) []valueRule {
	var out []valueRule
	for _, name := range sortedKeys(raw) {
		path := section + "." + name
		v := raw[name]
		if !nameRE.MatchString(name) {
			b.fail(path, "%q is not a valid name", name)
			continue
		}
		if slices.Contains(forbidden, strings.ToLower(name)) {
			b.fail(path, "%q is managed by Joinery itself and cannot be set by policy", name)
			continue
		}
		switch {
		case v.Template != "" && v.Expr != "":
			b.fail(path, "set either template or expr, not both")
		case v.Expr != "":
			if prg, err := compile(b.env, path+".expr", v.Expr, cel.StringType); err != nil {
				b.add(err)
			} else {
				out = append(out, valueRule{name: name, expr: prg, text: v.Expr})
			}
		case v.Template != "":
			segs, err := parseTemplate(v.Template, isValueTemplatePlaceholder, valueTemplateHint)
			if err != nil {
				b.fail(path, "%v", err)
			} else {
				out = append(out, valueRule{name: name, tmpl: segs, text: v.Template})
			}
		default:
			b.fail(path, "empty value: give a template string or expr")
		}
	}
	return out
}

// approverRef validates an approver reference: a role or a literal username.
func (b *builder) approverRef(path, ref string) {
	switch ref {
	case ApproverManager, ApproverSponsor, ApproverManagersManager:
		return
	}
	if !usernameRE.MatchString(ref) {
		b.fail(path, "%q is neither manager, sponsor, managers-manager nor a valid username", ref)
	}
}

func (b *builder) buildRoutes(raw []rawRoute) {
	b.routes = map[string]bool{}
	names := map[string]bool{}
	for i, rr := range raw {
		path := fmt.Sprintf("approval.routes[%d]", i)
		b.ruleName(path+".name", rr.Name, names)
		b.routes[rr.Name] = true
		r := route{name: rr.Name, approver: rr.Approver, secondApprover: rr.SecondApprover, escalateTo: rr.EscalateTo, breakGlass: rr.BreakGlass}
		for j, d := range rr.Delegates {
			dp := fmt.Sprintf("%s.delegates[%d]", path, j)
			b.approverRef(dp, d)
			if d == rr.SecondApprover {
				b.fail(dp, "%q is also the second approver; one person cannot give both approvals", d)
			}
			r.delegates = append(r.delegates, d)
		}
		r.when = b.cond(path+".when", rr.When)
		if strings.TrimSpace(rr.When) == "" && i != len(raw)-1 {
			b.fail(path+".when", "only the last route may omit 'when' (it is the default); routes after it could never match")
		}
		if rr.Approver == "" {
			b.fail(path+".approver", "required: manager, sponsor, managers-manager or a username")
		} else {
			b.approverRef(path+".approver", rr.Approver)
		}
		if rr.SecondApprover != "" {
			b.approverRef(path+".second_approver", rr.SecondApprover)
			if rr.SecondApprover == rr.Approver {
				b.fail(path+".second_approver", "must differ from approver: four-eyes approval needs two people")
			}
		}
		dur := func(field, s string) time.Duration {
			if s == "" {
				return 0
			}
			d, err := parseDuration(s)
			if err != nil {
				b.fail(path+"."+field, "%v", err)
				return 0
			}
			if d <= 0 || d > maxApprovalWait {
				b.fail(path+"."+field, "%s is outside (0, 90d]", s)
				return 0
			}
			return d
		}
		r.timeout = dur("timeout", rr.Timeout)
		r.reminderAfter = dur("reminder_after", rr.ReminderAfter)
		r.escalateAfter = dur("escalate_after", rr.EscalateAfter)
		if rr.Timeout == "" {
			b.fail(path+".timeout", "required: how long to wait before the joiner is rejected")
		}
		if r.timeout > 0 {
			if r.reminderAfter >= r.timeout {
				b.fail(path+".reminder_after", "must be shorter than timeout (%s)", rr.Timeout)
			}
			if r.escalateAfter >= r.timeout {
				b.fail(path+".escalate_after", "must be shorter than timeout (%s)", rr.Timeout)
			}
		}
		if r.reminderAfter > 0 && r.escalateAfter > 0 && r.reminderAfter >= r.escalateAfter {
			b.fail(path+".reminder_after", "must be shorter than escalate_after: remind before escalating")
		}
		if rr.EscalateTo != "" {
			b.approverRef(path+".escalate_to", rr.EscalateTo)
			if rr.EscalateAfter == "" {
				b.fail(path+".escalate_to", "set without escalate_after")
			}
		} else if rr.EscalateAfter != "" {
			r.escalateTo = ApproverManagersManager
		}
		b.p.routes = append(b.p.routes, r)
	}
	if n := len(raw); n == 0 || strings.TrimSpace(raw[n-1].When) != "" {
		b.fail("approval.routes", "a default route is required: the last route must have no 'when'")
	}
}

func (b *builder) buildExceptions(raw []rawException) {
	names := map[string]bool{}
	for i, re := range raw {
		path := fmt.Sprintf("exceptions[%d]", i)
		b.ruleName(path+".name", re.Name, names)
		e := exception{name: re.Name, approval: re.Approval}
		if strings.TrimSpace(re.When) == "" {
			b.fail(path+".when", "required: an exception without a condition is just policy")
		} else {
			e.when = b.cond(path+".when", re.When)
		}
		for j, g := range re.AddGroups {
			if b.group(fmt.Sprintf("%s.add_groups[%d]", path, j), g) {
				e.add = append(e.add, g)
			}
		}
		for j, g := range re.RemoveGroups {
			gp := fmt.Sprintf("%s.remove_groups[%d]", path, j)
			if b.group(gp, g) {
				if slices.Contains(re.AddGroups, g) {
					b.fail(gp, "group %q is both added and removed", g)
				}
				e.remove = append(e.remove, g)
			}
		}
		if re.Approval != "" && !b.routes[re.Approval] {
			b.fail(path+".approval", "unknown approval route %q", re.Approval)
		}
		if len(re.AddGroups) == 0 && len(re.RemoveGroups) == 0 && re.Approval == "" {
			b.fail(path, "has no effect: set add_groups, remove_groups or approval")
		}
		b.p.exceptions = append(b.p.exceptions, e)
	}
}

var daysRE = regexp.MustCompile(`^(\d{1,4})d$`)

// parseDuration accepts Go durations ("72h", "90m") and whole days ("7d"),
// because approval windows and lifetimes are naturally counted in days.
func parseDuration(s string) (time.Duration, error) {
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use e.g. 90m, 72h or 7d", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
