package policy

import "slices"

// Kind names the sort of identity a joiner is. Policies declare which kinds
// they provision under `kinds`; a joiner of an undeclared kind is rejected.
const (
	KindEmployee       = "employee"
	KindContractor     = "contractor"
	KindServiceAccount = "service-account"
	KindPipeline       = "pipeline"
	KindAIAgent        = "ai-agent"
)

// knownKinds is every kind Joinery understands, humans first.
var knownKinds = []string{KindEmployee, KindContractor, KindServiceAccount, KindPipeline, KindAIAgent}

// Kinds returns every kind Joinery understands, humans first.
func Kinds() []string { return slices.Clone(knownKinds) }

// IsKnownKind reports whether kind is one Joinery understands (whether a
// given policy provisions it is decided by Policy.Plan).
func IsKnownKind(kind string) bool { return slices.Contains(knownKinds, kind) }

// IsHumanKind reports whether kind describes a person (employee or
// contractor) rather than a non-human identity.
func IsHumanKind(kind string) bool {
	return kind == KindEmployee || kind == KindContractor
}

// Worker is the normalised HR view of a joiner. CEL conditions see it as the
// map variable `worker`, keyed by the JSON names below, so a policy author
// writes `worker.department == "Engineering"`. Every key is always present
// (empty string when HR has no value) so conditions never fail on a missing
// key; test for emptiness with `worker.endDate != ""`.
type Worker struct {
	HRISID                  string `json:"hrisId"`
	EmployeeNumber          string `json:"employeeNumber,omitempty"`
	FirstName               string `json:"firstName,omitempty"`
	LastName                string `json:"lastName,omitempty"`
	PreferredName           string `json:"preferredName,omitempty"`
	Department              string `json:"department,omitempty"`
	JobTitle                string `json:"jobTitle,omitempty"`
	Location                string `json:"location,omitempty"`
	ManagerID               string `json:"managerId,omitempty"`
	ManagerUsername         string `json:"managerUsername,omitempty"`
	ManagerEmail            string `json:"managerEmail,omitempty"`
	ManagersManagerUsername string `json:"managersManagerUsername,omitempty"`
	// HireDate is the first working day, YYYY-MM-DD.
	HireDate string `json:"hireDate,omitempty"`
	// EndDate is the last day of a time-bound identity (contractors,
	// non-humans), YYYY-MM-DD.
	EndDate string `json:"endDate,omitempty"`
	// Kind is one of employee, contractor, service-account, pipeline, ai-agent.
	Kind             string `json:"kind"`
	EmploymentStatus string `json:"employmentStatus,omitempty"`
	Email            string `json:"email,omitempty"`
	// Environment, Purpose and SponsorUsername describe non-human identities.
	Environment     string `json:"environment,omitempty"`
	Purpose         string `json:"purpose,omitempty"`
	SponsorUsername string `json:"sponsorUsername,omitempty"`
}

// workerField binds a JSON field name to its value. The explicit table (rather
// than reflection) keeps evaluation cheap and obvious; a test proves it covers
// every struct field.
type workerField struct {
	name string
	get  func(*Worker) *string
}

var workerFields = []workerField{
	{"hrisId", func(w *Worker) *string { return &w.HRISID }},
	{"employeeNumber", func(w *Worker) *string { return &w.EmployeeNumber }},
	{"firstName", func(w *Worker) *string { return &w.FirstName }},
	{"lastName", func(w *Worker) *string { return &w.LastName }},
	{"preferredName", func(w *Worker) *string { return &w.PreferredName }},
	{"department", func(w *Worker) *string { return &w.Department }},
	{"jobTitle", func(w *Worker) *string { return &w.JobTitle }},
	{"location", func(w *Worker) *string { return &w.Location }},
	{"managerId", func(w *Worker) *string { return &w.ManagerID }},
	{"managerUsername", func(w *Worker) *string { return &w.ManagerUsername }},
	{"managerEmail", func(w *Worker) *string { return &w.ManagerEmail }},
	{"managersManagerUsername", func(w *Worker) *string { return &w.ManagersManagerUsername }},
	{"hireDate", func(w *Worker) *string { return &w.HireDate }},
	{"endDate", func(w *Worker) *string { return &w.EndDate }},
	{"kind", func(w *Worker) *string { return &w.Kind }},
	{"employmentStatus", func(w *Worker) *string { return &w.EmploymentStatus }},
	{"email", func(w *Worker) *string { return &w.Email }},
	{"environment", func(w *Worker) *string { return &w.Environment }},
	{"purpose", func(w *Worker) *string { return &w.Purpose }},
	{"sponsorUsername", func(w *Worker) *string { return &w.SponsorUsername }},
}

// WorkerFieldNames returns the JSON names of every Worker field, in
// declaration order: the keys CEL sees on `worker` and the placeholders
// templates may use.
func WorkerFieldNames() []string {
	names := make([]string, len(workerFields))
	for i, f := range workerFields {
		names[i] = f.name
	}
	return names
}

func isWorkerField(name string) bool {
	return slices.ContainsFunc(workerFields, func(f workerField) bool { return f.name == name })
}

// Fields returns the worker as a map keyed by JSON name, with every key
// present. This is exactly what CEL conditions see as `worker`.
func (w Worker) Fields() map[string]string {
	m := make(map[string]string, len(workerFields))
	for _, f := range workerFields {
		m[f.name] = *f.get(&w)
	}
	return m
}

// field returns the value of the named field ("" for unknown names).
func (w *Worker) field(name string) string {
	for _, f := range workerFields {
		if f.name == name {
			return *f.get(w)
		}
	}
	return ""
}
