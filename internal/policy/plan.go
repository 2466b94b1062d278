package policy

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Plan is everything the policy decides about one joiner. It is plain data
// (JSON-serialisable, no funcs) because the workflow records it in history;
// the username-dependent values are kept as templates with a {username}
// placeholder and filled by AttributesFor and WriteBackFor once the
// username has been claimed.
type Plan struct {
	// PolicyVersion is the Policy.Version the plan was made under.
	PolicyVersion string `json:"policyVersion"`
	// Kind is the joiner's kind (employee, contractor, ...).
	Kind string `json:"kind"`
	// OU is the directory organizational unit for the account, from the kind.
	OU string `json:"ou"`
	// Candidates are the usernames to try in order: patterns first, then
	// counters, at most naming.max_attempts.
	Candidates []string `json:"candidates"`
	// UsernameRules says which pattern produced each candidate (same order).
	UsernameRules []CandidateRule `json:"usernameRules"`
	// Groups are the groups to grant, with the rule that granted each.
	Groups []Grant `json:"groups"`
	// Withheld are groups a rule granted but the kind's allow-list forbids.
	Withheld []Grant `json:"withheld,omitempty"`
	// Attributes are directory attributes; values may contain {username}.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Approval says who approves, when to remind and escalate, and when the
	// request times out.
	Approval ApprovalPlan `json:"approval"`
	// WriteBack lists the HRIS fields Joinery owns for this joiner, sorted.
	// Fields not listed are never written.
	WriteBack []string `json:"writeBack,omitempty"`
	// WriteBackTemplates holds each owned field's value; may contain
	// {username}. Use WriteBackFor.
	WriteBackTemplates map[string]string `json:"writeBackTemplates,omitempty"`
	// HireDate is the joiner's first day (YYYY-MM-DD), if HR gave one.
	HireDate string `json:"hireDate,omitempty"`
	// ProvisionLeadDays is how many days before HireDate to provision.
	ProvisionLeadDays int `json:"provisionLeadDays"`
	// RescindGrace keeps a provisioned employee joiner open this long
	// after HireDate, so that a rescinded offer or a termination before
	// the start still rolls everything back.
	RescindGrace time.Duration `json:"rescindGrace,omitempty"`
	// CompensationStuckAfter is how long a failing rollback or revocation
	// retries before the joiner reports CompensationStuck (it keeps
	// retrying after that; it never gives up).
	CompensationStuckAfter time.Duration `json:"compensationStuckAfter,omitempty"`
	// ProvisionDate is HireDate minus ProvisionLeadDays (YYYY-MM-DD), or
	// empty without a hire date. Computed from the record, not the clock.
	ProvisionDate string `json:"provisionDate,omitempty"`
	// TimeZone is the IANA zone of the joiner's site (sites in the policy,
	// from Worker.Location): provisioning and expiry happen at its local
	// midnight. Empty in plans made before sites existed (then UTC).
	TimeZone string `json:"timeZone,omitempty"`
	// ProvisionAt, StartsAt and ExpiresAt are the instants local midnight
	// of ProvisionDate, of HireDate and of the day after EndDate fall on in
	// TimeZone, computed here (an activity) so the workflow never reads the
	// time zone database. Nil when the date is absent.
	ProvisionAt *time.Time `json:"provisionAt,omitempty"`
	StartsAt    *time.Time `json:"startsAt,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	// CredentialTTL is the response-wrapping TTL of the initial credential.
	CredentialTTL time.Duration `json:"credentialTTL"`
	// Exceptions names the exception rules that applied, in policy order.
	Exceptions []string `json:"exceptions,omitempty"`
	// EndDate is when access ends (YYYY-MM-DD): contractors and non-human
	// joiners stay under watch until then and are revoked on it.
	EndDate string `json:"endDate,omitempty"`
	// MaxLifetime caps EndDate - HireDate, for the record and extensions.
	MaxLifetime time.Duration `json:"maxLifetime,omitempty"`
	// ExpiryReminder is how long before EndDate the owner is reminded.
	ExpiryReminder time.Duration `json:"expiryReminder,omitempty"`
	// Owner is the accountable human: the sponsor of a non-human joiner,
	// the manager of a person.
	Owner string `json:"owner,omitempty"`
	// Workload is the Vault AppRole of a non-human joiner (nil for people).
	Workload *WorkloadPlan `json:"workload,omitempty"`
	// Rehire is set on a rehire's plan (rehire.go): the approver signs for
	// re-enabling exactly this entry. Nil (and absent from the JSON, so
	// earlier plans hash as before) for every other joiner.
	Rehire *RehirePlan `json:"rehire,omitempty"`
}

// CheckExtension says whether access may be extended to newEnd: a real date
// after the current end and within the kind's maximum lifetime from the
// start. It returns the reason when not.
func (p Plan) CheckExtension(newEnd string) error {
	end, err := time.Parse(dateLayout, newEnd)
	if err != nil {
		return fmt.Errorf("endDate %q is not a date in YYYY-MM-DD form", newEnd)
	}
	if cur, err := time.Parse(dateLayout, p.EndDate); err == nil && !end.After(cur) {
		return fmt.Errorf("endDate %s is not after the current end %s", newEnd, p.EndDate)
	}
	if start, err := time.Parse(dateLayout, p.HireDate); err == nil && p.MaxLifetime > 0 && end.Sub(start) > p.MaxLifetime {
		return fmt.Errorf("endDate %s is %d days after the start %s; kind %s may last at most %d days",
			newEnd, int(end.Sub(start)/(24*time.Hour)), p.HireDate, p.Kind, int(p.MaxLifetime/(24*time.Hour)))
	}
	return nil
}

// CheckStartMove says whether the start may move to newStart (HR moved the
// hire date): a real date, not after the current end date, and with the end
// date within the kind's maximum lifetime from it. It returns the reason
// when not; the joiner then keeps its start and records the refusal.
func (p Plan) CheckStartMove(newStart string) error {
	start, err := time.Parse(dateLayout, newStart)
	if err != nil {
		return fmt.Errorf("start date %q is not a date in YYYY-MM-DD form", newStart)
	}
	end, err := time.Parse(dateLayout, p.EndDate)
	if err != nil {
		return nil // no end date: nothing to check against
	}
	if start.After(end) {
		return fmt.Errorf("the new start %s is after the end date %s", newStart, p.EndDate)
	}
	if p.MaxLifetime > 0 && end.Sub(start) > p.MaxLifetime {
		return fmt.Errorf("the end date %s is %d days after the new start %s; kind %s may last at most %d days",
			p.EndDate, int(end.Sub(start)/(24*time.Hour)), newStart, p.Kind, int(p.MaxLifetime/(24*time.Hour)))
	}
	return nil
}

// planInstants records the site's zone and the local midnights of the
// plan's dates. The zone was loaded (and so validated) when the policy was
// parsed; a date that does not parse is reported by checkRecord.
func (p *Policy) planInstants(plan *Plan, location string) {
	plan.TimeZone = p.ZoneFor(location)
	loc := p.location(plan.TimeZone)
	at := func(date string) *time.Time {
		if date == "" {
			return nil
		}
		t, err := DayStart(date, loc)
		if err != nil {
			return nil
		}
		t = t.UTC()
		return &t
	}
	plan.ProvisionAt = at(plan.ProvisionDate)
	plan.StartsAt = at(plan.HireDate)
	if next, err := NextDay(plan.EndDate); err == nil {
		plan.ExpiresAt = at(next)
	}
}

// Grant is one group grant and why it was made.
type Grant struct {
	Group string `json:"group"`
	// Rule is the birthright or exception rule name.
	Rule string `json:"rule"`
	// Source is "birthright" or "exception".
	Source string `json:"source"`
	// Condition is the rule's CEL text ("" when unconditional).
	Condition string `json:"condition,omitempty"`
	// Reason explains a withheld grant.
	Reason string `json:"reason,omitempty"`
}

// ApprovalPlan is the resolved approval route for one joiner.
type ApprovalPlan struct {
	// Rule is the name of the route that matched.
	Rule string `json:"rule"`
	// OverriddenBy names the exception that chose Rule, if any.
	OverriddenBy string `json:"overriddenBy,omitempty"`
	// Approver is the username whose approval is required.
	Approver string `json:"approver"`
	// Delegates may approve instead of Approver at any time (resolved
	// usernames, without Approver, in policy order).
	Delegates []string `json:"delegates,omitempty"`
	// SecondApprover, when set, must approve too (four eyes): the request
	// is approved only once both Approver (or a delegate) and
	// SecondApprover have approved.
	SecondApprover string `json:"secondApprover,omitempty"`
	// EscalateTo is asked after EscalateAfter; empty means no escalation
	// (e.g. the manager has no manager on record).
	EscalateTo string `json:"escalateTo,omitempty"`
	// ReminderAfter, EscalateAfter and Timeout count from the request;
	// zero ReminderAfter/EscalateAfter means none. Timeout means reject.
	ReminderAfter time.Duration `json:"reminderAfter,omitempty"`
	EscalateAfter time.Duration `json:"escalateAfter,omitempty"`
	Timeout       time.Duration `json:"timeout"`
	// BreakGlass lets an operator decide without the inbox, with a reason;
	// off unless the route says break_glass: true. Such a decision is marked
	// as break-glass everywhere.
	BreakGlass bool `json:"breakGlass,omitempty"`
}

// AttributesFor returns the directory attributes with the claimed username
// filled in.
func (p Plan) AttributesFor(username string) map[string]string {
	return fillUsername(p.Attributes, username)
}

// WriteBackFor returns the HRIS field values Joinery writes back for the
// claimed username (field → value). Only fields in WriteBack appear.
func (p Plan) WriteBackFor(username string) map[string]string {
	return fillUsername(p.WriteBackTemplates, username)
}

// RuleFor describes which naming rule produced username, for the audit
// record, e.g. "{first}.{last}{n} (naming.counters[0], n=2)"; "" if
// username is not one of the candidates.
func (p Plan) RuleFor(username string) string {
	for _, r := range p.UsernameRules {
		if r.Candidate != username {
			continue
		}
		if r.N != 0 || strings.Contains(r.Rule, "counters") {
			return fmt.Sprintf("%s (%s, n=%d)", r.Pattern, r.Rule, r.N)
		}
		return fmt.Sprintf("%s (%s)", r.Pattern, r.Rule)
	}
	return ""
}

// GroupNames returns just the group names of Groups, in grant order.
func (p Plan) GroupNames() []string {
	out := make([]string, len(p.Groups))
	for i, g := range p.Groups {
		out[i] = g.Group
	}
	return out
}

const dateLayout = "2006-01-02"

// Plan validates the joiner against the policy and decides names, groups,
// attributes, approval and write-back. It is pure: the same policy and
// worker always give the same plan (it never reads the clock). Record
// problems are *ValidationError values naming the Worker field; problems in
// the policy's own expressions are *PolicyError values. All are joined.
func (p *Policy) Plan(w Worker) (Plan, error) {
	w = trimmed(w)
	if errs := checkShape(&w); len(errs) > 0 {
		// Evaluating conditions over malformed input is pointless and
		// oversized fields could exhaust the cost limit; stop here.
		return Plan{}, errors.Join(errs...)
	}
	kind, ok := p.kinds[w.Kind]
	if !ok {
		if w.Kind == "" {
			return Plan{}, invalid("kind", "required")
		}
		return Plan{}, invalid("kind", "%q is not provisioned by policy %s (kinds: %s)", w.Kind, p.Label, strings.Join(sortedKeys(p.kinds), ", "))
	}
	var errs []error
	errs = append(errs, p.checkRecord(&w, kind)...)

	vars := map[string]any{"worker": w.Fields()}
	plan := Plan{
		PolicyVersion:          p.Version,
		Kind:                   w.Kind,
		OU:                     kind.ou,
		HireDate:               w.HireDate,
		ProvisionLeadDays:      p.leadDays,
		RescindGrace:           p.rescindGrace,
		CompensationStuckAfter: p.stuckAfter,
		CredentialTTL:          p.wrapTTL,
		EndDate:                w.EndDate,
		MaxLifetime:            kind.maxLifetime,
		ExpiryReminder:         kind.expiryReminder,
		Workload:               kind.workloadFor(&w),
	}
	plan.Owner = w.ManagerUsername
	if !IsHumanKind(w.Kind) {
		plan.Owner = w.SponsorUsername
	}
	if t, err := time.Parse(dateLayout, w.HireDate); err == nil {
		plan.ProvisionDate = t.AddDate(0, 0, -p.leadDays).Format(dateLayout)
	}
	p.planInstants(&plan, w.Location)

	rules, nameErrs := p.naming.candidates(&w, vars)
	errs = append(errs, nameErrs...)
	for _, r := range rules {
		plan.Candidates = append(plan.Candidates, r.Candidate)
	}
	plan.UsernameRules = rules

	grants, err := p.grants(vars)
	errs = append(errs, err...)
	overrideRoute, overrideBy := "", ""
	for _, e := range p.exceptions {
		ok, err := e.when.evalBool(vars)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		plan.Exceptions = append(plan.Exceptions, e.name)
		grants = slices.DeleteFunc(grants, func(g Grant) bool { return slices.Contains(e.remove, g.Group) })
		for _, g := range e.add {
			if !slices.ContainsFunc(grants, func(x Grant) bool { return x.Group == g }) {
				grants = append(grants, Grant{Group: g, Rule: e.name, Source: "exception", Condition: e.when.text})
			}
		}
		if e.approval != "" {
			// Exceptions apply in file order, so a later one overrides an
			// earlier one's approval route.
			overrideRoute, overrideBy = e.approval, e.name
		}
	}
	for _, g := range grants {
		if kind.restricted && !slices.Contains(kind.groups, g.Group) {
			g.Reason = fmt.Sprintf("kind %s may only hold %v", w.Kind, kind.groups)
			plan.Withheld = append(plan.Withheld, g)
			continue
		}
		plan.Groups = append(plan.Groups, g)
	}
	if plan.Groups == nil {
		plan.Groups = []Grant{} // "no groups" is a decision; record it as such
	}

	approval, aErrs := p.approval(&w, vars, overrideRoute, overrideBy)
	errs = append(errs, aErrs...)
	plan.Approval = approval

	plan.Attributes, err = p.values(p.attributes, &w, vars)
	errs = append(errs, err...)
	plan.WriteBackTemplates, err = p.values(p.writeback, &w, vars)
	errs = append(errs, err...)
	plan.WriteBack = sortedKeys(plan.WriteBackTemplates)

	if len(errs) > 0 {
		return Plan{}, errors.Join(onePerField(errs)...)
	}
	return plan, nil
}

// onePerField keeps the first problem reported for each record field: an
// empty required field also fails naming and approval, but "required" is
// the one worth reading.
func onePerField(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0:0]
	for _, e := range errs {
		var ve *ValidationError
		if errors.As(e, &ve) {
			if seen[ve.Field] {
				continue
			}
			seen[ve.Field] = true
		}
		out = append(out, e)
	}
	return out
}

// trimmed returns w with surrounding whitespace removed from every field:
// HR exports are full of trailing spaces, and "Engineering " must match.
func trimmed(w Worker) Worker {
	for _, f := range workerFields {
		v := f.get(&w)
		*v = strings.TrimSpace(*v)
	}
	return w
}

// checkShape rejects values no field may hold, before anything is evaluated.
func checkShape(w *Worker) []error {
	var errs []error
	for _, f := range workerFields {
		v := *f.get(w)
		switch {
		case len(v) > maxFieldLen:
			errs = append(errs, invalid(f.name, "is %d bytes long; the limit is %d", len(v), maxFieldLen))
		case strings.ContainsFunc(v, unicode.IsControl):
			errs = append(errs, invalid(f.name, "contains a control character"))
		case strings.ContainsAny(v, "{}"):
			// Braces are template syntax; refusing them keeps a value
			// from smuggling a {username} placeholder into a template.
			errs = append(errs, invalid(f.name, "must not contain '{' or '}'"))
		}
	}
	return errs
}

// checkRecord applies the kind's requirements and the format rules.
func (p *Policy) checkRecord(w *Worker, kind kindSpec) []error {
	var errs []error
	for _, f := range kind.required {
		if w.field(f) == "" {
			errs = append(errs, invalid(f, "required for kind %s", w.Kind))
		}
	}
	var hire, end time.Time
	var hireOK, endOK bool
	if w.HireDate != "" {
		t, err := time.Parse(dateLayout, w.HireDate)
		if err != nil {
			errs = append(errs, invalid("hireDate", "%q is not a date in YYYY-MM-DD form", w.HireDate))
		}
		hire, hireOK = t, err == nil
	}
	if w.EndDate != "" {
		t, err := time.Parse(dateLayout, w.EndDate)
		if err != nil {
			errs = append(errs, invalid("endDate", "%q is not a date in YYYY-MM-DD form", w.EndDate))
		}
		end, endOK = t, err == nil
	}
	if hireOK && endOK && end.Before(hire) {
		errs = append(errs, invalid("endDate", "%s is before hireDate %s", w.EndDate, w.HireDate))
	}
	if kind.maxLifetime > 0 {
		maxDays := int(kind.maxLifetime / (24 * time.Hour))
		// A field the kind already requires has been reported above.
		switch {
		case w.EndDate == "":
			if !slices.Contains(kind.required, "endDate") {
				errs = append(errs, invalid("endDate", "required for kind %s: its access is limited to %d days", w.Kind, maxDays))
			}
		case w.HireDate == "":
			if !slices.Contains(kind.required, "hireDate") {
				errs = append(errs, invalid("hireDate", "required for kind %s: its lifetime counts from it", w.Kind))
			}
		case hireOK && endOK && end.Sub(hire) > kind.maxLifetime:
			errs = append(errs, invalid("endDate", "%s is %d days after hireDate; kind %s may last at most %d days",
				w.EndDate, int(end.Sub(hire)/(24*time.Hour)), w.Kind, maxDays))
		}
	}
	for _, f := range []string{"email", "managerEmail"} {
		if v := w.field(f); v != "" {
			if a, err := mail.ParseAddress(v); err != nil || a.Address != v || !strings.Contains(v[strings.LastIndex(v, "@")+1:], ".") {
				errs = append(errs, invalid(f, "%q is not a plain e-mail address like name@example.com", v))
			}
		}
	}
	for _, f := range []string{"managerUsername", "managersManagerUsername", "sponsorUsername"} {
		if v := w.field(f); v != "" && !usernameRE.MatchString(v) {
			errs = append(errs, invalid(f, "%q is not a valid username", v))
		}
	}
	if len(kind.environments) > 0 {
		switch {
		case w.Environment == "":
			errs = append(errs, invalid("environment", "required for kind %s: one of %s", w.Kind, strings.Join(kind.environments, ", ")))
		case !slices.Contains(kind.environments, w.Environment):
			errs = append(errs, invalid("environment", "%q is not allowed for kind %s (allowed: %s)", w.Environment, w.Kind, strings.Join(kind.environments, ", ")))
		}
	}
	return errs
}

// grants evaluates birthright rules in order; the first rule granting a
// group is the one recorded.
func (p *Policy) grants(vars map[string]any) ([]Grant, []error) {
	var out []Grant
	var errs []error
	for _, r := range p.birthright {
		if r.when != nil {
			ok, err := r.when.evalBool(vars)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue
			}
		}
		if slices.ContainsFunc(out, func(g Grant) bool { return g.Group == r.group }) {
			continue
		}
		g := Grant{Group: r.group, Rule: r.name, Source: "birthright"}
		if r.when != nil {
			g.Condition = r.when.text
		}
		out = append(out, g)
	}
	return out, errs
}

// approval picks the first matching route (or the exception's override) and
// resolves role references to usernames.
func (p *Policy) approval(w *Worker, vars map[string]any, override, by string) (ApprovalPlan, []error) {
	var r *route
	var errs []error
	for i := range p.routes {
		if override != "" {
			if p.routes[i].name == override {
				r = &p.routes[i]
				break
			}
			continue
		}
		if p.routes[i].when == nil {
			r = &p.routes[i]
			break
		}
		ok, err := p.routes[i].when.evalBool(vars)
		if err != nil {
			return ApprovalPlan{}, []error{err}
		}
		if ok {
			r = &p.routes[i]
			break
		}
	}
	if r == nil { // unreachable: Parse requires a default route
		return ApprovalPlan{}, []error{policyErr("approval.routes", "no route matched")}
	}
	ap := ApprovalPlan{
		Rule:          r.name,
		OverriddenBy:  by,
		ReminderAfter: r.reminderAfter,
		EscalateAfter: r.escalateAfter,
		Timeout:       r.timeout,
		BreakGlass:    r.breakGlass,
	}
	resolve := func(ref, role string, required bool) (string, string) {
		field := ""
		v := ref
		switch ref {
		case ApproverManager:
			field, v = "managerUsername", w.ManagerUsername
		case ApproverSponsor:
			field, v = "sponsorUsername", w.SponsorUsername
		case ApproverManagersManager:
			field, v = "managersManagerUsername", w.ManagersManagerUsername
		}
		if v == "" && required {
			errs = append(errs, invalid(field, "required: approval route %s asks the %s (%s)", r.name, ref, role))
		}
		return v, field
	}
	var approverField, secondField string
	ap.Approver, approverField = resolve(r.approver, "approver", true)
	if r.secondApprover != "" {
		ap.SecondApprover, secondField = resolve(r.secondApprover, "second approver", true)
		if ap.SecondApprover != "" && strings.EqualFold(ap.SecondApprover, ap.Approver) {
			field := firstNonEmpty(secondField, approverField, "approval")
			errs = append(errs, invalid(field, "%s would be both approver and second approver on route %s; four-eyes approval needs two people", ap.Approver, r.name))
		}
	}
	// Delegates and the escalation target stand in for the approver. One
	// that resolves to nobody, to the approver, or to the second approver
	// (who would then approve twice, defeating four eyes) is left out:
	// these are conveniences, the two-person rule is not.
	usable := func(v string) bool {
		return v != "" && !strings.EqualFold(v, ap.Approver) && !strings.EqualFold(v, ap.SecondApprover)
	}
	for _, d := range r.delegates {
		if v, _ := resolve(d, "delegate", false); usable(v) && !slices.Contains(ap.Delegates, v) {
			ap.Delegates = append(ap.Delegates, v)
		}
	}
	if r.escalateTo != "" {
		if v, _ := resolve(r.escalateTo, "escalation", false); usable(v) {
			ap.EscalateTo = v
		} else {
			ap.EscalateAfter = 0
		}
	}
	return ap, errs
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// values renders attribute or write-back rules; empty results are left out
// (a directory attribute or HR field is never set to "").
func (p *Policy) values(rules []valueRule, w *Worker, vars map[string]any) (map[string]string, []error) {
	if len(rules) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	var errs []error
	for _, r := range rules {
		var v string
		if r.expr != nil {
			s, err := r.expr.evalString(vars)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			// CEL output is literal: escape nothing, but keep it from
			// carrying a placeholder or control characters into LDAP.
			if strings.ContainsAny(s, "{}") || strings.ContainsFunc(s, unicode.IsControl) {
				errs = append(errs, policyErr(r.expr.path, "result contains braces or control characters"))
				continue
			}
			v = s
		} else {
			v = expandValueTemplate(r.tmpl, w)
		}
		if v = strings.TrimSpace(v); v != "" {
			out[r.name] = v
		}
	}
	return out, errs
}
