package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPlanDefaultPolicy measures planning one joiner under the dev
// stack's policy: naming with transliteration, every CEL condition, routes.
func BenchmarkPlanDefaultPolicy(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "policy", "default.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	w := Worker{HRISID: "200", FirstName: "José", LastName: "Ñúñez", Department: "Engineering", Location: "DE-Berlin",
		ManagerUsername: "ada.lovelace", ManagersManagerUsername: "grace.hopper", HireDate: "2026-12-01", Kind: KindEmployee}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Plan(w); err != nil {
			b.Fatal(err)
		}
	}
}
