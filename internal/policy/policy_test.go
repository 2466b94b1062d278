package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidPolicyFiles(t *testing.T) {
	for _, name := range []string{"default.yaml", "minimal.yaml"} {
		p, err := Load(filepath.Join(policyDir, name))
		require.NoError(t, err, name)
		require.Regexp(t, `^[a-z0-9.-]+@sha256:[0-9a-f]{12}$`, p.Version)
		require.True(t, strings.HasPrefix(p.Version, p.Label+"@"))
	}
	p := loadDefault(t)
	require.Equal(t, "default", p.Label)
	require.Equal(t, []string{"all-staff", "engineering", "vpn-users", "finance", "github-eu", "contractors", "ci-deployers"}, p.Groups)
}

// The default policy may only name groups the dev directory has.
func TestDefaultGroupsExistInSeed(t *testing.T) {
	seed := string(readFile(t, "../../testdata/ldap/seed.ldif"))
	for _, g := range loadDefault(t).Groups {
		require.Contains(t, seed, "dn: cn="+g+",ou=groups,", g)
	}
}

var expectRE = regexp.MustCompile(`(?m)^# expect: (.+)$`)

// Each invalid-*.yaml holds exactly one mistake, and its first line says
// which error (field path and message) Parse must report for it.
func TestInvalidPolicyFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(policyDir, "invalid-*.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 20)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data := readFile(t, f)
			m := expectRE.FindSubmatch(data)
			require.NotNil(t, m, "missing '# expect:' line")
			_, err := Parse(data)
			require.Error(t, err)
			problems := Problems(err)
			require.Len(t, problems, 1, "want exactly one problem, got:\n%v", err)
			require.Contains(t, problems[0].Error(), string(m[1]))
			var pe *PolicyError
			require.ErrorAs(t, problems[0], &pe)
		})
	}
}

func TestParseCollectsAllProblems(t *testing.T) {
	src := `label: Bad Label
groups: [a, a]
naming:
  max_attempts: 0
  patterns:
    - pattern: "{first}.{lsat}"
kinds:
  employee: {ou: people, required: [hrisid]}
birthright:
  - {name: x, group: b, when: worker.dept == "x"}
  - {name: x, group: a, when: "1 + 1"}
approval:
  routes:
    - {name: r, approver: "not a user", timeout: 100d, when: "true"}
credentials: {wrap_ttl: 1s}
exceptions:
  - {name: e, when: "true"}
`
	_, err := Parse([]byte(src))
	require.Error(t, err)
	var paths []string
	for _, e := range Problems(err) {
		var pe *PolicyError
		require.ErrorAs(t, e, &pe)
		paths = append(paths, pe.Path)
	}
	require.Equal(t, []string{
		"label",
		"groups[1]",
		"naming.max_attempts",
		"naming.patterns[0].pattern",
		"kinds.employee.required[0]",
		"birthright[0].group",
		"birthright[0].when",
		"birthright[1].name",
		"birthright[1].when",
		"approval.routes[0].approver",
		"approval.routes[0].timeout",
		"approval.routes",
		"exceptions[0]",
		"credentials.wrap_ttl",
	}, paths)
}

func TestCELChecks(t *testing.T) {
	tests := []struct {
		when string
		err  string // "" = valid
	}{
		{`worker.department == "Engineering" && worker.location.startsWith("DE")`, ""},
		{`worker["department"] == "Engineering"`, ""},
		{`has(worker.department)`, ""},
		{`"department" in worker`, ""},
		{`worker.location.matches("^DE-")`, ""},
		{`worker.department.lowerAscii() == "engineering"`, ""},
		{`["DE", "AT"].exists(c, worker.location.startsWith(c))`, ""},
		{"worker.kind == \"employee\" &&\n  worker.department == \"Finance\"", ""},
		{`worker.dept == "x"`, "undeclared reference to 'worker.dept'"},
		{`worker.departmnet == "x"`, "did you mean 'worker.department'?"},
		{`worker["dept"] == "x"`, "undeclared reference to 'worker.dept'"},
		{`has(worker.dept)`, "undeclared reference to 'worker.dept'"},
		{"worker.kind == \"employee\" &&\n  worker.dept == \"x\"", "(line 2, column"},
		{`worker[worker.kind] == "x"`, "'worker' may only be used to read a named field"},
		{`size(worker) > 3`, "'worker' may only be used to read a named field"},
		{`worker.all(k, k != "")`, "iterating over a map is not allowed"},
		{`{"a": "b"}.exists(k, k == worker.kind)`, "iterating over a map is not allowed"},
		{`department == "x"`, "undeclared reference to 'department'"},
		{`worker.department`, "must be a bool expression, but it has type string"},
		{`worker.department ==`, "Syntax error"},
		{`worker.employeeNumber > 5`, "found no matching overload"},
		{strings.Repeat("worker.department == \"x\" || ", 200) + "true", "limit is 4096"},
		{`[` + strings.Repeat(`1,`, 99) + `1].all(x, [` + strings.Repeat(`1,`, 99) + `1].all(y, worker.firstName.matches(worker.lastName)))`, "estimated worst-case cost"},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			src := `label: t
groups: [g]
naming: {patterns: [{pattern: "{first}"}]}
kinds: {employee: {ou: people}}
birthright:
  - name: r
    group: g
    when: ` + yamlQuote(tt.when) + `
approval: {routes: [{name: d, approver: manager, timeout: 1d}]}
credentials: {wrap_ttl: 1h}
`
			_, err := Parse([]byte(src))
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "birthright[0].when: ")
			require.Contains(t, err.Error(), tt.err)
		})
	}
}

func yamlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func TestParseStructure(t *testing.T) {
	valid := string(readFile(t, filepath.Join(policyDir, "minimal.yaml")))
	tests := []struct {
		name string
		src  string
		err  string
	}{
		{"empty", "", "policy file is empty"},
		{"comment only", "# nothing\n", "policy file is empty"},
		{"scalar", "hello\n", "policy must be a YAML mapping"},
		{"not a mapping", "- a\n- b\n", "policy must be a YAML mapping"},
		{"two documents", valid + "---\nlabel: x\n", "exactly one YAML document"},
		{"bad yaml", "label: [", "invalid YAML"},
		{"not utf-8", "label: \xff\n", "not valid UTF-8"},
		{"list where mapping expected", strings.Replace(valid, "provisioning:\n  lead_days: 7", "provisioning: [7]", 1), "provisioning: must be a mapping"},
		{"mapping where value expected", strings.Replace(valid, "label: minimal", "label: {a: b}", 1), "label: must be a single value"},
		{"unknown nested field", strings.Replace(valid, "lead_days: 7", "lead_dayz: 7", 1), `provisioning.lead_dayz: unknown field "lead_dayz"; did you mean "lead_days"?`},
		{"duplicate key", strings.Replace(valid, "label: minimal", "label: minimal\nlabel: again", 1), "already defined"},
		{"alias bomb", "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n", "unknown field"},
		{"lead days", strings.Replace(valid, "lead_days: 7", "lead_days: 400", 1), "provisioning.lead_days: 400 is outside 0..365"},
		{"wrap ttl too long", strings.Replace(valid, "wrap_ttl: 72h", "wrap_ttl: 60d", 1), "credentials.wrap_ttl: 60d is outside"},
		{"second approver equals approver", strings.Replace(valid, "approver: sponsor\n", "approver: sponsor\n      second_approver: sponsor\n", 1), "approval.routes[0].second_approver: must differ from approver"},
		{"escalate_to without escalate_after", strings.Replace(valid, "approver: sponsor\n", "approver: sponsor\n      escalate_to: manager\n", 1), "escalate_to: set without escalate_after"},
		{"max lifetime in hours", strings.Replace(valid, "    groups: [ci-deployers]\n", "    groups: [ci-deployers]\n    max_lifetime: 36h\n", 1), "whole number of days"},
		{"exception adds and removes", strings.Replace(valid, "remove_groups: [vpn-users]", "remove_groups: [vpn-users]\n    add_groups: [vpn-users]", 1), "both added and removed"},
		{"exception without when", strings.Replace(valid, `    when: worker.department == "Finance"`+"\n", "", 1), "exceptions[0].when: required"},
		{"start on a pattern", strings.Replace(valid, `    - pattern: "{f}{last}"`, `    - pattern: "{f}{last}"`+"\n      start: 3", 1), "naming.patterns[1].start: only counters"},
		{"{n} in a pattern", strings.Replace(valid, `"{f}{last}"`, `"{f}{last}{n}"`, 1), "{n} belongs in naming.counters"},
		{"{n} mid counter", strings.Replace(valid, `"{first}.{last}{n}"`, `"{first}{n}.{last}"`, 1), "a counter must end with {n}"},
		{"uppercase literal", strings.Replace(valid, `"{f}{last}"`, `"X{f}{last}"`, 1), `literal 'X' cannot appear`},
		{"literal only", strings.Replace(valid, `"{f}{last}"`, `"svc"`, 1), "at least one placeholder"},
		{"unclosed brace", strings.Replace(valid, `"{f}{last}"`, `"{f}{last"`, 1), "unclosed '{'"},
		{"stray brace", strings.Replace(valid, `"{f}{last}"`, `"{f}}{last}"`, 1), "unmatched '}'"},
		{"transliterate key", strings.Replace(valid, "  max_length: 20\n", "  max_length: 20\n  transliterate: {ae: x}\n", 1), "naming.transliterate.ae: key must be exactly one character"},
		{"template and expr", strings.Replace(valid, `cn: "{firstName} {lastName}"`, "cn: {template: x, expr: '\"x\"'}", 1), "attributes.cn: set either template or expr"},
		{"empty attribute", strings.Replace(valid, `cn: "{firstName} {lastName}"`, `cn: ""`, 1), "attributes.cn: empty value"},
		{"bad attribute name", strings.Replace(valid, `cn: "{firstName} {lastName}"`, `"c n": x`, 1), `"c n" is not a valid name`},
		{"identity attribute", strings.Replace(valid, `cn: "{firstName} {lastName}"`, `employeeNumber: "{employeeNumber}"`, 1), `attributes.employeeNumber: "employeeNumber" is managed by Joinery itself`},
		{"bad ou", strings.Replace(valid, "ou: people", "ou: people,dc=evil", 1), "kinds.employee.ou"},
		{"bad group name", strings.Replace(valid, "groups: [all-staff,", "groups: [All Staff,", 1), "groups[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestVersion(t *testing.T) {
	path := filepath.Join(policyDir, "default.yaml")
	data := readFile(t, path)
	a, b := loadDefault(t), loadDefault(t)
	require.Equal(t, a.Version, b.Version, "stable across loads")

	version := func(data []byte) string {
		p, err := Parse(data)
		require.NoError(t, err)
		return p.Version
	}
	require.Equal(t, a.Version, version(bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))), "CRLF checkout")
	require.Equal(t, a.Version, version(append([]byte("\xef\xbb\xbf"), data...)), "BOM")
	require.Equal(t, a.Version, version(append(bytes.Clone(data), "\n\n"...)), "trailing newlines")

	changed := bytes.Replace(data, []byte("lead_days: 7"), []byte("lead_days: 6"), 1)
	require.NotEqual(t, a.Version, version(changed), "content change")
	commented := append(bytes.Clone(data), "# reviewed\n"...)
	require.NotEqual(t, a.Version, version(commented), "a comment is a change too")
	relabelled := bytes.Replace(data, []byte("label: default"), []byte("label: other"), 1)
	require.True(t, strings.HasPrefix(version(relabelled), "other@sha256:"))
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestProblems(t *testing.T) {
	require.Nil(t, Problems(nil))
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	require.Equal(t, []error{a, b, c}, Problems(errors.Join(a, errors.Join(b, c))))
	require.Equal(t, "x.y: bad", (&PolicyError{Path: "x.y", Reason: "bad"}).Error())
	require.Equal(t, "bad", (&PolicyError{Reason: "bad"}).Error())
	require.Equal(t, "hireDate: bad", (&ValidationError{Field: "hireDate", Reason: "bad"}).Error())
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]string{"7d": "168h0m0s", "72h": "72h0m0s", "90m": "1h30m0s", "0d": "0s"} {
		d, err := parseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, d.String())
	}
	for _, in := range []string{"7days", "-1h", "d", "1.5d", ""} {
		_, err := parseDuration(in)
		require.Error(t, err, in)
	}
}
