package hrisserver

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// fieldKind says how a field is stored and whether the API may write it.
type fieldKind int

const (
	// stored fields are columns the API may write.
	stored fieldKind = iota
	// readOnly fields are columns only the server sets (id, lastChanged).
	readOnly
	// computed fields are derived on read (displayName).
	computed
)

// field is one employee field the reference HRIS knows, by its BambooHR API
// name. The name doubles as the SQLite column name; names only ever come from
// this table, never from a request, so building SQL with them is safe.
type field struct {
	name     string
	kind     fieldKind
	validate func(v string) error
}

// maxValueLen bounds one field value (runes).
const maxValueLen = 512

var (
	dateLayout = "2006-01-02"
	idRE       = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)
)

// fields lists every known field in the order records are rendered.
// It is never modified after initialisation.
var fields = []field{
	{name: "id", kind: readOnly},
	{name: "employeeNumber", kind: stored, validate: plainText},
	{name: "firstName", kind: stored, validate: nonEmpty},
	{name: "lastName", kind: stored, validate: nonEmpty},
	{name: "preferredName", kind: stored, validate: plainText},
	{name: "displayName", kind: computed},
	{name: "department", kind: stored, validate: plainText},
	{name: "jobTitle", kind: stored, validate: plainText},
	{name: "location", kind: stored, validate: plainText},
	{name: "supervisorEId", kind: stored, validate: optionalID},
	{name: "hireDate", kind: stored, validate: optionalDate},
	{name: "terminationDate", kind: stored, validate: optionalDate},
	{name: "employmentHistoryStatus", kind: stored, validate: plainText},
	{name: "status", kind: stored, validate: oneOf("Active", "Inactive")},
	{name: "workEmail", kind: stored, validate: optionalEmail},
	{name: "homeEmail", kind: stored, validate: optionalEmail},
	{name: "customUsername", kind: stored, validate: optionalUsername},
	// customAccessStatus is where Joinery records the end state of
	// time-bound access (a BambooHR custom field in a real tenant).
	{name: "customAccessStatus", kind: stored, validate: plainText},
	{name: "lastChanged", kind: readOnly},
}

// webhookMonitored are the fields whose change delivers an "Updated" webhook.
var webhookMonitored = []string{"hireDate", "terminationDate", "status"}

func lookupField(name string) (field, bool) {
	i := slices.IndexFunc(fields, func(f field) bool { return f.name == name })
	if i < 0 {
		return field{}, false
	}
	return fields[i], true
}

// storedColumns returns the names of the columns the API may write.
func storedColumns() []string {
	var out []string
	for _, f := range fields {
		if f.kind == stored {
			out = append(out, f.name)
		}
	}
	return out
}

// checkWrite validates one field assignment from an API request.
func checkWrite(name, value string) error {
	f, ok := lookupField(name)
	if !ok {
		return fmt.Errorf("unknown field %q", clip(name))
	}
	if f.kind != stored {
		return fmt.Errorf("field %q is not writable", name)
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("field %q is not valid UTF-8", name)
	}
	if utf8.RuneCountInString(value) > maxValueLen {
		return fmt.Errorf("field %q is longer than %d characters", name, maxValueLen)
	}
	if strings.ContainsFunc(value, unicode.IsControl) {
		return fmt.Errorf("field %q contains control characters", name)
	}
	if f.validate != nil {
		if err := f.validate(value); err != nil {
			return fmt.Errorf("field %q: %v", name, err)
		}
	}
	return nil
}

func plainText(string) error { return nil }

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func optionalID(v string) error {
	if v != "" && !idRE.MatchString(v) {
		return fmt.Errorf("must be an employee id")
	}
	return nil
}

func optionalDate(v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(dateLayout, v); err != nil {
		return fmt.Errorf("must be a date YYYY-MM-DD")
	}
	return nil
}

func optionalEmail(v string) error {
	if v == "" {
		return nil
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v {
		return fmt.Errorf("must be a bare e-mail address")
	}
	return nil
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func optionalUsername(v string) error {
	if v != "" && !usernameRE.MatchString(v) {
		return fmt.Errorf("must be a directory username (lowercase letters, digits, . _ -)")
	}
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
		}
		return nil
	}
}

// clip shortens request-supplied text before it is echoed in a message.
func clip(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}
