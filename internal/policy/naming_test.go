package policy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransliteration(t *testing.T) {
	n := &naming{lowercase: true, strip: []string{"'", "’", "-", " ", "."}}
	tests := []struct{ in, want string }{
		{"José", "jose"},
		{"Ñúñez", "nunez"},
		{"Zoë", "zoe"},
		{"Ødegård", "odegard"},
		{"Straße", "strasse"},
		{"Łukasz", "lukasz"},
		{"Дмитрий", "dmitrii"},
		{"Иванов", "ivanov"},
		{"王", "wang"},
		{"小明", "xiaoming"},
		{"Þór", "thor"},
		{"Ærøskøbing", "aeroskobing"},
		{"Nguyễn", "nguyen"},
		{"İlhan", "ilhan"},
		{"Đorđe", "dorde"},
		{"محمد", "mhmd"},
		{"O'Brien", "obrien"},
		{"O’Brien", "obrien"},
		{"Smith-Jones", "smithjones"},
		{"van der Berg", "vanderberg"},
		{"St. John", "stjohn"},
		{"Jose\u0301", "jose"}, // decomposed accent (NFD input)
		{"  Ada  ", "ada"},
		{"ADA", "ada"},
		{"ﬁona", "fiona"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, reason := n.normalize(tt.in)
			require.Empty(t, reason)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTransliterationErrors(t *testing.T) {
	n := &naming{lowercase: true, strip: []string{"'", " "}}
	tests := []struct{ in, reason string }{
		{"", "transliterates to nothing"},
		{"☃", "transliterates to nothing"},
		{"😀", "transliterates to nothing"},
		{"'  '", "transliterates to nothing"},
		{"Smith (Jr)", `contains '('`},
		{"ʻOkina", "contains '`'"},
		{"a@b", "contains '@'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, reason := n.normalize(tt.in)
			require.Empty(t, got)
			require.Contains(t, reason, tt.reason)
		})
	}
}

func TestTransliterationOverridesAndCase(t *testing.T) {
	n := &naming{lowercase: true, translit: map[rune]string{'ä': "ae", 'ö': "oe", 'ü': "ue", 'Ü': "Ue"}}
	for in, want := range map[string]string{"Müller": "mueller", "Jäger": "jaeger", "Üwe": "uewe", "Zoë": "zoe"} {
		got, reason := n.normalize(in)
		require.Empty(t, reason, in)
		require.Equal(t, want, got, in)
	}
	keep := &naming{lowercase: false}
	got, reason := keep.normalize("McDonald")
	require.Empty(t, reason)
	require.Equal(t, "McDonald", got)
}

func candidates(t *testing.T, p *Policy, w Worker) []string {
	t.Helper()
	plan, err := p.Plan(w)
	require.NoError(t, err)
	require.Len(t, plan.UsernameRules, len(plan.Candidates))
	for i, r := range plan.UsernameRules {
		require.Equal(t, plan.Candidates[i], r.Candidate)
	}
	return plan.Candidates
}

func TestCandidates(t *testing.T) {
	std := `  strip: ["'", "-", " "]
  max_length: 20
  max_attempts: 5
  reserved: [admin, root]
  patterns:
    - pattern: "{first}.{last}"
    - pattern: "{f}{last}"
  counters:
    - pattern: "{first}.{last}{n}"`
	tests := []struct {
		name   string
		naming string
		worker Worker
		want   []string
	}{
		{"patterns then counter from 2", std, employee("John", "Smith"),
			[]string{"john.smith", "jsmith", "john.smith2", "john.smith3", "john.smith4"}},
		{"transliterated", std, employee("José", "Ñúñez"),
			[]string{"jose.nunez", "jnunez", "jose.nunez2", "jose.nunez3", "jose.nunez4"}},
		{"strip apostrophe hyphen space", std, employee("Mary Ann", "O'Brien-Smith"),
			[]string{"maryann.obriensmith", "mobriensmith", "maryann.obriensmith2", "maryann.obriensmith3", "maryann.obriensmith4"}},
		{"long names: counter base cut, digits kept", std, employee("Maximiliana", "Oberhollenzer"),
			[]string{"maximiliana.oberholl", "moberhollenzer", "maximiliana.oberhol2", "maximiliana.oberhol3", "maximiliana.oberhol4"}},
		{"hyphen kept when not stripped", `  strip: ["'"]
  patterns:
    - pattern: "{first}.{last}"`, employee("Mary", "Smith-Jones"), []string{"mary.smith-jones"}},
		{"adjacent separators collapse", `  patterns:
    - pattern: "{first}.{last}"`, employee("Ann", ".-St.-John"), []string{"ann.st.john"}},
		{"max_length truncates, trailing separator trimmed", `  max_length: 12
  max_attempts: 4
  patterns:
    - pattern: "{first}.{last}"
    - pattern: "{f}{last}"
  counters:
    - pattern: "{first}.{last}{n}"
      start: 9`, employee("Maximiliana", "Oberhollenzer"),
			// The counter never loses digits: the base shrinks instead.
			[]string{"maximiliana", "moberhollenz", "maximiliana9", "maximilian10"}},
		{"counter separator literal", `  max_length: 8
  patterns:
    - pattern: "{last}"
  counters:
    - pattern: "{last}.{n}"
      start: 1`, employee("A", "Abcdefghij"),
			[]string{"abcdefgh", "abcdef.1", "abcdef.2", "abcdef.3", "abcdef.4", "abcdef.5", "abcdef.6", "abcdef.7", "abcdef.8", "abcdef.9"}},
		{"reserved skipped everywhere, case-insensitive", `  max_attempts: 3
  reserved: [Root, root2, root.admin]
  patterns:
    - pattern: "{first}"
    - pattern: "{first}.{last}"
  counters:
    - pattern: "{first}{n}"`, employee("ROOT", "Admin"), []string{"root3", "root4", "root5"}},
		{"duplicates removed", `  patterns:
    - pattern: "{first}{last}"
    - pattern: "{f}{last}"
  counters:
    - pattern: "{f}{last}{n}"
      start: 0`, employee("J", "Smith"),
			[]string{"jsmith", "jsmith0", "jsmith1", "jsmith2", "jsmith3", "jsmith4", "jsmith5", "jsmith6", "jsmith7", "jsmith8"}},
		{"max_attempts caps patterns", `  max_attempts: 1
  patterns:
    - pattern: "{first}.{last}"
    - pattern: "{f}{last}"`, employee("John", "Smith"), []string{"john.smith"}},
		{"no counters: only patterns", `  patterns:
    - pattern: "{first}.{last}"
    - pattern: "{first}{l}"`, employee("John", "Smith"), []string{"john.smith", "johns"}},
		{"preferred name", `  use_preferred_name: true
  patterns:
    - pattern: "{first}.{last}"
    - pattern: "{f}{last}"`, Worker{Kind: KindEmployee, FirstName: "Дмитрий", PreferredName: "Dima", LastName: "Иванов"},
			[]string{"dima.ivanov", "divanov"}},
		{"preferred name ignored unless enabled", `  patterns:
    - pattern: "{first}.{last}"`, Worker{Kind: KindEmployee, FirstName: "Дмитрий", PreferredName: "Dima", LastName: "Иванов"},
			[]string{"dmitrii.ivanov"}},
		{"preferred name falls back to first name", `  use_preferred_name: true
  patterns:
    - pattern: "{first}.{last}"`, employee("Zoë", "Ødegård"), []string{"zoe.odegard"}},
		{"worker field placeholder", `  patterns:
    - pattern: "e{employeeNumber}"`, Worker{Kind: KindEmployee, EmployeeNumber: "1001"}, []string{"e1001"}},
		{"uppercase kept when lowercase is off", `  lowercase: false
  patterns:
    - pattern: "{first}{last}"`, employee("Mc", "Donald"), []string{"McDonald"}},
		{"pattern when selects by kind", `  patterns:
    - pattern: "{first}.{last}"
      when: worker.kind == "employee"
    - pattern: "svc-{first}"
      when: worker.kind == "service-account"
  counters:
    - pattern: "{first}.{last}{n}"
      when: worker.kind == "employee"
    - pattern: "svc-{first}{n}"`, Worker{Kind: KindServiceAccount, FirstName: "Deploy"},
			[]string{"svc-deploy", "svc-deploy2", "svc-deploy3", "svc-deploy4", "svc-deploy5", "svc-deploy6", "svc-deploy7", "svc-deploy8", "svc-deploy9", "svc-deploy10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, candidates(t, namingPolicy(t, tt.naming), tt.worker))
		})
	}
}

func TestCandidateRules(t *testing.T) {
	p := loadDefault(t)
	plan, err := p.Plan(jose())
	require.NoError(t, err)
	require.Equal(t, CandidateRule{Candidate: "jose.nunez", Pattern: "{first}.{last}", Rule: "naming.patterns[0]"}, plan.UsernameRules[0])
	require.Equal(t, CandidateRule{Candidate: "jnunez", Pattern: "{f}{last}", Rule: "naming.patterns[1]"}, plan.UsernameRules[1])
	require.Equal(t, CandidateRule{Candidate: "jose.nunez2", Pattern: "{first}.{last}{n}", Rule: "naming.counters[0]", N: 2}, plan.UsernameRules[2])
	require.Equal(t, "{first}.{last} (naming.patterns[0])", plan.RuleFor("jose.nunez"))
	require.Equal(t, "{first}.{last}{n} (naming.counters[0], n=3)", plan.RuleFor("jose.nunez3"))
	require.Empty(t, plan.RuleFor("someone.else"))
}

func TestNamingErrors(t *testing.T) {
	std := `  use_preferred_name: true
  strip: [" "]
  patterns:
    - pattern: "{first}.{last}"
      when: worker.kind == "employee"
    - pattern: "svc-{purpose}"
      when: worker.kind == "service-account"`
	p := namingPolicy(t, std)
	tests := []struct {
		name   string
		worker Worker
		fields []string
		reason string
	}{
		{"first name transliterates to nothing", employee("☃", "Smith"), []string{"firstName"}, "transliterates to nothing"},
		{"both names reported", employee("☃", "😀"), []string{"firstName", "lastName"}, "transliterates to nothing"},
		{"preferred name is the source", Worker{Kind: KindEmployee, FirstName: "Ann", PreferredName: "☃", LastName: "Lee"}, []string{"preferredName"}, ""},
		{"character strip does not remove", employee("Ann", "O'Brien"), []string{"lastName"}, `contains '\''`},
		{"unused fields are not checked", Worker{Kind: KindServiceAccount, FirstName: "☃", Purpose: "deploy"}, nil, ""},
		{"used worker field", Worker{Kind: KindServiceAccount, Purpose: "☃"}, []string{"purpose"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Plan(tt.worker)
			if tt.fields == nil {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.fields, fields(t, err))
			require.Contains(t, err.Error(), tt.reason)
		})
	}
}

func TestNoCandidateIsAPolicyError(t *testing.T) {
	p := namingPolicy(t, `  reserved: [ann]
  patterns:
    - pattern: "{first}"
    - pattern: "{last}"
      when: worker.kind == "contractor"`)
	_, err := p.Plan(employee("Ann", "Lee"))
	var pe *PolicyError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "naming", pe.Path)
}

// Every candidate the default policy produces, for any name, is a valid
// username within max_length and not reserved.
func TestCandidateShape(t *testing.T) {
	p := loadDefault(t)
	re := regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)
	names := [][2]string{{"José", "Ñúñez"}, {"A", "B"}, {"Maximiliana-Theresa", "von und zu Oberhollenzer-Schwarzenberg"}, {"王", "小明"}, {"Zoë", "O'Brien"}, {"x", strings.Repeat("y", 200)}}
	for _, n := range names {
		w := jose()
		w.FirstName, w.LastName = n[0], n[1]
		plan, err := p.Plan(w)
		require.NoError(t, err, n)
		require.Len(t, plan.Candidates, 30, "naming.max_attempts of default.yaml")
		for _, c := range plan.Candidates {
			require.Regexp(t, re, c)
			require.LessOrEqual(t, len(c), 20, c)
			require.False(t, p.naming.reserved[c], c)
		}
	}
}
