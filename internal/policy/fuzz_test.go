package policy

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"
)

// FuzzParse: no input may make Parse panic or hang, and whatever Parse
// accepts must plan without panicking.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(policyDir, "*.yaml"))
	for _, file := range files {
		f.Add(readFile(f, file))
	}
	f.Add([]byte("label: x\ngroups: &g [a]\nnaming: {patterns: [{pattern: '{first}'}]}\nkinds: {employee: {ou: p, groups: *g}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("label: {{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			for _, e := range Problems(err) {
				if e == nil || e.Error() == "" {
					t.Fatalf("empty problem in %v", err)
				}
			}
			return
		}
		if p.Version == "" {
			t.Fatal("valid policy without a version")
		}
		for _, w := range []Worker{jose(), contractor(), machine(KindPipeline, "production"), {}} {
			plan, err := p.Plan(w)
			if err == nil {
				if _, err := json.Marshal(plan); err != nil {
					t.Fatalf("plan does not serialise: %v", err)
				}
			}
		}
	})
}

var usernameShape = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// FuzzPlanNames: any HR names give either a clear error or well-formed
// candidates within max_length that are never reserved.
func FuzzPlanNames(f *testing.F) {
	p := loadDefault(f)
	for _, s := range [][3]string{{"José", "Ñúñez", ""}, {"Дмитрий", "Иванов", "Dima"}, {"☃", "x", ""}, {"a", "b", "c"}, {"O'Brien", "Smith-Jones", " "}} {
		f.Add(s[0], s[1], s[2], "Engineering", "DE-Berlin")
	}
	f.Fuzz(func(t *testing.T, first, last, preferred, dept, loc string) {
		w := jose()
		w.FirstName, w.LastName, w.PreferredName, w.Department, w.Location = first, last, preferred, dept, loc
		plan, err := p.Plan(w)
		if err != nil {
			if len(Problems(err)) == 0 {
				t.Fatal("error without problems")
			}
			return
		}
		if len(plan.Candidates) == 0 || len(plan.Candidates) > 30 { // default.yaml naming.max_attempts
			t.Fatalf("got %d candidates", len(plan.Candidates))
		}
		for _, c := range plan.Candidates {
			if len(c) > 20 || !usernameShape.MatchString(c) || p.naming.reserved[c] {
				t.Fatalf("bad candidate %q", c)
			}
		}
	})
}
