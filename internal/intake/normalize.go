package intake

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/workflows"
)

// Joiner is one joiner request as any intake path (webhook, API, bulk file,
// SCIM, `starter import`) received it, before normalisation. Field names in
// errors are the JSON names below; each path maps them to its own spelling
// (a CSV column, a SCIM attribute path, a webhook field).
//
// Only HRISID, Kind, RequestedBy and EventID reach the workflow: it reads
// the HR record itself, so that its history shows what it saw. The other
// fields are checked anyway so that a broken export or upstream payload is
// refused at the door instead of half-processed.
type Joiner struct {
	HRISID      string `json:"hrisId"`
	Kind        string `json:"kind,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	EventID     string `json:"eventId,omitempty"`
	HireDate    string `json:"hireDate,omitempty"`
	EndDate     string `json:"endDate,omitempty"`
	Email       string `json:"email,omitempty"`
	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	Department  string `json:"department,omitempty"`
	ManagerID   string `json:"managerId,omitempty"`
}

// Limits of the normalisation rules.
const (
	// MaxTextLen bounds free-text fields (names, department, requestedBy), in runes.
	MaxTextLen = 128
	// MaxEventIDLen bounds an event or delivery ID, in bytes.
	MaxEventIDLen = 200
	// MaxEmailLen is the longest address SMTP can carry (RFC 5321 path limit).
	MaxEmailLen = 254
)

var (
	// hrisIDRE is the workflow's own rule (workflows.validHRISID): checking
	// it here means a bad ID is answered 400 instead of starting a workflow
	// that fails at once.
	hrisIDRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	dateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	eventIDRE = regexp.MustCompile(`^[\x21-\x7e]+$`)
)

// FieldError is a request that cannot be accepted, naming the offending
// field. It renders as the JSON error answer {"error": ..., "field": ...}.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"error"`
}

// Error renders "field: reason".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Normalize is the one normalisation and validation every intake path uses.
// It trims surrounding white space, lower-cases the kind and checks every
// field; the first problem is returned as a *FieldError and the request must
// then start nothing.
func Normalize(j Joiner) (Joiner, error) {
	j.HRISID = strings.TrimSpace(j.HRISID)
	j.Kind = strings.ToLower(strings.TrimSpace(j.Kind))
	j.RequestedBy = strings.TrimSpace(j.RequestedBy)
	j.EventID = strings.TrimSpace(j.EventID)
	j.HireDate = strings.TrimSpace(j.HireDate)
	j.EndDate = strings.TrimSpace(j.EndDate)
	j.Email = strings.TrimSpace(j.Email)
	j.FirstName = strings.TrimSpace(j.FirstName)
	j.LastName = strings.TrimSpace(j.LastName)
	j.Department = strings.TrimSpace(j.Department)
	j.ManagerID = strings.TrimSpace(j.ManagerID)

	if err := checkHRISID("hrisId", j.HRISID, true); err != nil {
		return j, err
	}
	if j.Kind != "" && !policy.IsKnownKind(j.Kind) {
		return j, fieldErr("kind", "%q is not a joiner kind; want one of %s", clip(j.Kind, 40), strings.Join(policy.Kinds(), ", "))
	}
	if err := checkText("requestedBy", j.RequestedBy); err != nil {
		return j, err
	}
	if j.EventID != "" && (len(j.EventID) > MaxEventIDLen || !eventIDRE.MatchString(j.EventID)) {
		return j, fieldErr("eventId", "want 1-%d printable ASCII characters without spaces", MaxEventIDLen)
	}
	if err := checkDate("hireDate", j.HireDate); err != nil {
		return j, err
	}
	if err := checkDate("endDate", j.EndDate); err != nil {
		return j, err
	}
	if j.HireDate != "" && j.EndDate != "" && j.EndDate < j.HireDate {
		return j, fieldErr("endDate", "%s is before the hire date %s", j.EndDate, j.HireDate)
	}
	if err := checkEmail("email", j.Email); err != nil {
		return j, err
	}
	for _, f := range []struct{ name, v string }{{"firstName", j.FirstName}, {"lastName", j.LastName}, {"department", j.Department}} {
		if err := checkText(f.name, f.v); err != nil {
			return j, err
		}
	}
	if err := checkHRISID("managerId", j.ManagerID, false); err != nil {
		return j, err
	}
	return j, nil
}

// Input is the workflow input for a normalised request arriving via source.
func (j Joiner) Input(source string) workflows.JoinerInput {
	return workflows.JoinerInput{HRISID: j.HRISID, Kind: j.Kind, Source: source, RequestedBy: j.RequestedBy, EventID: j.EventID}
}

func checkHRISID(field, v string, required bool) *FieldError {
	if v == "" {
		if required {
			return fieldErr(field, "required")
		}
		return nil
	}
	if !hrisIDRE.MatchString(v) {
		return fieldErr(field, "want 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// checkText accepts printable UTF-8 up to MaxTextLen runes: control
// characters have no place in a name and break logs and CSV reports.
func checkText(field, v string) *FieldError {
	if !utf8.ValidString(v) {
		return fieldErr(field, "not valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > MaxTextLen {
		return fieldErr(field, "too long (%d characters, at most %d)", n, MaxTextLen)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == utf8.RuneError || (!unicode.IsPrint(r) && r != ' ') {
			return fieldErr(field, "contains a control or non-printable character")
		}
	}
	return nil
}

// checkDate accepts exactly YYYY-MM-DD naming a real calendar day.
func checkDate(field, v string) *FieldError {
	if v == "" {
		return nil
	}
	if !dateRE.MatchString(v) {
		return fieldErr(field, "want a date as YYYY-MM-DD")
	}
	if _, err := time.Parse(time.DateOnly, v); err != nil {
		return fieldErr(field, "%s is not a calendar date", v)
	}
	return nil
}

// checkEmail accepts a bare address (no display name, no comments) that
// net/mail parses back to itself, with a dotted domain.
func checkEmail(field, v string) *FieldError {
	if v == "" {
		return nil
	}
	if len(v) > MaxEmailLen {
		return fieldErr(field, "too long (%d bytes, at most %d)", len(v), MaxEmailLen)
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return fieldErr(field, "not an e-mail address (want local@domain)")
	}
	at := strings.LastIndexByte(v, '@')
	domain := v[at+1:]
	if strings.ContainsAny(v, " \t\"()<>[]\\,;:") || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return fieldErr(field, "not an e-mail address (want local@domain)")
	}
	return nil
}

// clip shortens an echoed value so an error never carries a huge payload.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
