package policy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// jose is the record in testdata/policy/records/jose-nunez.json.
func jose() Worker {
	return Worker{
		HRISID: "1001", EmployeeNumber: "1001", FirstName: "José", LastName: "Ñúñez",
		Department: "Engineering", JobTitle: "Software Engineer", Location: "DE-Berlin",
		ManagerID: "100", ManagerUsername: "ada.lovelace", ManagerEmail: "ada.lovelace@joinery.test",
		ManagersManagerUsername: "grace.hopper", HireDate: "2026-09-01", Kind: KindEmployee,
		EmploymentStatus: "Full-Time", Email: "jose.nunez@example.com",
	}
}

func contractor() Worker {
	w := jose()
	w.Kind, w.EndDate = KindContractor, "2027-02-28"
	return w
}

func machine(kind, env string) Worker {
	return Worker{
		HRISID: "3001", FirstName: "deploy-bot", Kind: kind, Environment: env, Purpose: "Deploys the web app",
		SponsorUsername: "ada.lovelace", ManagerUsername: "grace.hopper", HireDate: "2026-09-01", EndDate: "2026-11-01",
	}
}

func TestRecordFiles(t *testing.T) {
	var w Worker
	require.NoError(t, json.Unmarshal(readFile(t, policyDir+"/records/jose-nunez.json"), &w))
	require.Equal(t, jose(), w)
}

// TestDefaultPolicyConditions walks every birthright, route and exception
// condition of default.yaml down both of its branches.
func TestDefaultPolicyConditions(t *testing.T) {
	p := loadDefault(t)
	with := func(w Worker, f func(*Worker)) Worker { f(&w); return w }
	tests := []struct {
		name       string
		worker     Worker
		groups     []string
		route      string
		approver   string
		second     string
		escalateTo string
		exceptions []string
	}{
		{"engineer in Germany", jose(),
			[]string{"all-staff", "engineering", "github-eu", "vpn-users"}, "manager", "ada.lovelace", "", "grace.hopper", nil},
		{"engineer outside Germany", with(jose(), func(w *Worker) { w.Location = "US-Boston" }),
			[]string{"all-staff", "engineering", "vpn-users"}, "manager", "ada.lovelace", "", "grace.hopper", nil},
		{"location prefix is case-sensitive", with(jose(), func(w *Worker) { w.Location = "de-Berlin" }),
			[]string{"all-staff", "engineering", "vpn-users"}, "manager", "ada.lovelace", "", "grace.hopper", nil},
		{"finance employee", with(jose(), func(w *Worker) { w.Department, w.ManagerUsername = "Finance", "alan.turing" }),
			[]string{"all-staff", "finance", "vpn-users"}, "manager", "alan.turing", "", "grace.hopper", nil},
		{"other department", with(jose(), func(w *Worker) { w.Department = "Sales" }),
			[]string{"all-staff", "vpn-users"}, "manager", "ada.lovelace", "", "grace.hopper", nil},
		{"no manager's manager: no escalation", with(jose(), func(w *Worker) { w.ManagerUsername, w.ManagersManagerUsername = "grace.hopper", "" }),
			[]string{"all-staff", "engineering", "github-eu", "vpn-users"}, "manager", "grace.hopper", "", "", nil},
		{"engineering contractor in Germany", contractor(),
			[]string{"all-staff", "engineering", "github-eu", "contractors"}, "manager", "ada.lovelace", "", "grace.hopper", nil},
		{"finance contractor: exception", with(contractor(), func(w *Worker) { w.Department, w.ManagerUsername = "Finance", "alan.turing" }),
			[]string{"all-staff", "contractors"}, "finance-contractor", "alan.turing", "grace.hopper", "", []string{"finance-contractor"}},
		{"pipeline in production", machine(KindPipeline, "production"),
			[]string{"ci-deployers"}, "production-machine", "ada.lovelace", "grace.hopper", "", nil},
		{"service account in staging", machine(KindServiceAccount, "staging"),
			[]string{"ci-deployers"}, "machine", "ada.lovelace", "", "grace.hopper", nil},
		{"ai agent in development", machine(KindAIAgent, "development"),
			[]string{}, "machine", "ada.lovelace", "", "grace.hopper", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := p.Plan(tt.worker)
			require.NoError(t, err)
			require.Equal(t, tt.groups, plan.GroupNames())
			require.Empty(t, plan.Withheld)
			require.Equal(t, tt.route, plan.Approval.Rule)
			require.Equal(t, tt.approver, plan.Approval.Approver)
			require.Equal(t, tt.second, plan.Approval.SecondApprover)
			require.Equal(t, tt.escalateTo, plan.Approval.EscalateTo)
			if tt.escalateTo == "" {
				require.Zero(t, plan.Approval.EscalateAfter)
			}
			require.Equal(t, tt.exceptions, plan.Exceptions)
			for _, g := range plan.Groups {
				require.Equal(t, "birthright", g.Source)
				require.NotEmpty(t, g.Condition, "every default grant is conditional")
			}
		})
	}
}

func TestPlanJose(t *testing.T) {
	p := loadDefault(t)
	plan, err := p.Plan(jose())
	require.NoError(t, err)
	require.Equal(t, p.Version, plan.PolicyVersion)
	require.Equal(t, "employee", plan.Kind)
	require.Equal(t, "people", plan.OU)
	require.Len(t, plan.Candidates, 30, "naming.max_attempts")
	require.Equal(t, []string{"jose.nunez", "jnunez", "jose.nunez2", "jose.nunez3", "jose.nunez4",
		"jose.nunez5", "jose.nunez6", "jose.nunez7", "jose.nunez8", "jose.nunez9", "jose.nunez10"}, plan.Candidates[:11])
	require.Equal(t, "jose.nunez29", plan.Candidates[29])
	require.Equal(t, Grant{Group: "github-eu", Rule: "github-eu", Source: "birthright",
		Condition: `worker.kind in ["employee", "contractor"] && worker.department == "Engineering" && worker.location.startsWith("DE")`}, plan.Groups[2])
	require.Equal(t, ApprovalPlan{Rule: "manager", Approver: "ada.lovelace", EscalateTo: "grace.hopper",
		ReminderAfter: 24 * time.Hour, EscalateAfter: 72 * time.Hour, Timeout: 7 * 24 * time.Hour}, plan.Approval)
	require.Equal(t, []string{"customAccessStatus", "customUsername", "workEmail"}, plan.WriteBack)
	require.Equal(t, map[string]string{"workEmail": "jose.nunez@joinery.test", "customUsername": "jose.nunez", "customAccessStatus": "active"},
		plan.WriteBackFor("jose.nunez"))
	require.Equal(t, map[string]string{
		"cn": "José Ñúñez", "sn": "Ñúñez", "givenName": "José", "displayName": "José Ñúñez",
		"mail": "jose.nunez2@joinery.test", "departmentNumber": "Engineering",
		"title": "Software Engineer", "l": "DE-Berlin",
		// description is empty for humans and therefore absent
	}, plan.AttributesFor("jose.nunez2"))
	require.Equal(t, "{username}@joinery.test", plan.Attributes["mail"], "the plan keeps the placeholder")
	require.Equal(t, 7, plan.ProvisionLeadDays)
	require.Equal(t, "2026-09-01", plan.HireDate)
	require.Equal(t, "2026-08-25", plan.ProvisionDate)
	require.Equal(t, 72*time.Hour, plan.CredentialTTL)
	require.Empty(t, plan.Exceptions)
}

func TestPlanDeterministic(t *testing.T) {
	workers := []Worker{jose(), contractor(), machine(KindPipeline, "production")}
	p1, p2 := loadDefault(t), loadDefault(t)
	for _, w := range workers {
		a, err := p1.Plan(w)
		require.NoError(t, err)
		for range 20 {
			b, err := p2.Plan(w)
			require.NoError(t, err)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			require.Equal(t, string(ja), string(jb))
		}
		// Round trip through JSON (workflow history) loses nothing.
		data, err := json.Marshal(a)
		require.NoError(t, err)
		var back Plan
		require.NoError(t, json.Unmarshal(data, &back))
		require.Equal(t, a, back)
	}
}

func TestPlanDoesNotMutateInput(t *testing.T) {
	p := loadDefault(t)
	w := jose()
	w.Department = " Engineering "
	plan, err := p.Plan(w)
	require.NoError(t, err)
	require.Equal(t, " Engineering ", w.Department)
	require.Contains(t, plan.GroupNames(), "engineering", "surrounding whitespace is trimmed before evaluation")
}

func TestValidationErrorsPerKind(t *testing.T) {
	p := loadDefault(t)
	with := func(w Worker, f func(*Worker)) Worker { f(&w); return w }
	tests := []struct {
		name   string
		worker Worker
		fields []string
		reason string
	}{
		{"employee missing required fields", with(jose(), func(w *Worker) { w.LastName, w.HireDate, w.ManagerUsername, w.Department = "", "", "", "" }),
			[]string{"department", "hireDate", "lastName", "managerUsername"}, "required for kind employee"},
		{"hire date format", with(jose(), func(w *Worker) { w.HireDate = "01/09/2026" }), []string{"hireDate"}, "YYYY-MM-DD"},
		{"hire date not a real day", with(jose(), func(w *Worker) { w.HireDate = "2026-02-30" }), []string{"hireDate"}, "YYYY-MM-DD"},
		{"email format", with(jose(), func(w *Worker) { w.Email = "José <jose@example.com>" }), []string{"email"}, "plain e-mail"},
		{"email without domain dot", with(jose(), func(w *Worker) { w.Email = "jose@localhost" }), []string{"email"}, "plain e-mail"},
		{"manager email format", with(jose(), func(w *Worker) { w.ManagerEmail = "ada" }), []string{"managerEmail"}, "plain e-mail"},
		{"manager username format", with(jose(), func(w *Worker) { w.ManagerUsername = "Ada Lovelace" }), []string{"managerUsername"}, "not a valid username"},
		{"contractor without end date", with(contractor(), func(w *Worker) { w.EndDate = "" }), []string{"endDate"}, "required for kind contractor"},
		{"contractor ends before start", with(contractor(), func(w *Worker) { w.EndDate = "2026-08-31" }), []string{"endDate"}, "before hireDate"},
		{"contractor beyond max lifetime", with(contractor(), func(w *Worker) { w.EndDate = "2027-09-02" }), []string{"endDate"}, "at most 365 days"},
		{"contractor end date format", with(contractor(), func(w *Worker) { w.EndDate = "2027-9-1" }), []string{"endDate"}, "YYYY-MM-DD"},
		{"service account: environment not allowed", machine(KindServiceAccount, "prod"), []string{"environment"}, `"prod" is not allowed`},
		{"pipeline: missing sponsor and purpose", with(machine(KindPipeline, "staging"), func(w *Worker) { w.SponsorUsername, w.Purpose = "", "" }),
			[]string{"purpose", "sponsorUsername"}, "required for kind pipeline"},
		{"pipeline: missing environment", machine(KindPipeline, ""), []string{"environment"}, "required for kind pipeline"},
		{"ai agent beyond 90 days", with(machine(KindAIAgent, "development"), func(w *Worker) { w.EndDate = "2026-12-01" }), []string{"endDate"}, "at most 90 days"},
		{"four eyes: sponsor is the second approver", with(machine(KindPipeline, "production"), func(w *Worker) { w.SponsorUsername = "grace.hopper" }),
			[]string{"sponsorUsername"}, "four-eyes"},
		{"unknown kind", with(jose(), func(w *Worker) { w.Kind = "robot" }), []string{"kind"}, `"robot" is not provisioned`},
		{"missing kind", with(jose(), func(w *Worker) { w.Kind = "" }), []string{"kind"}, "required"},
		{"control character", with(jose(), func(w *Worker) { w.LastName = "Nu\x00nez" }), []string{"lastName"}, "control character"},
		{"braces", with(jose(), func(w *Worker) { w.Department = "{username}" }), []string{"department"}, "'{'"},
		{"oversized field", with(jose(), func(w *Worker) { w.JobTitle = strings.Repeat("x", 257) }), []string{"jobTitle"}, "limit is 256"},
		{"several problems at once", with(contractor(), func(w *Worker) { w.HireDate, w.Email, w.FirstName = "x", "y", "☃" }),
			[]string{"email", "firstName", "hireDate"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := p.Plan(tt.worker)
			require.Equal(t, tt.fields, fields(t, err))
			require.Contains(t, err.Error(), tt.reason)
			require.True(t, IsValidationError(err))
			require.Zero(t, plan.PolicyVersion, "no plan on error")
		})
	}
}

func TestKindNotInPolicy(t *testing.T) {
	p, err := Load(policyDir + "/minimal.yaml")
	require.NoError(t, err)
	w := machine(KindPipeline, "production")
	_, err = p.Plan(w)
	require.Equal(t, []string{"kind"}, fields(t, err))
	require.Contains(t, err.Error(), "not provisioned by policy minimal (kinds: employee, service-account)")
}

const exceptionPolicy = `label: exc
groups: [a, b, c, d]
naming:
  patterns: [{pattern: "{first}"}]
kinds:
  employee: {ou: people}
  service-account: {ou: service-accounts, groups: [a]}
birthright:
  - {name: a-for-all, group: a}
  - {name: b-for-all, group: b}
  - {name: b-again, group: b, when: 'worker.department == "X"'}
  - {name: c-for-x, group: c, when: 'worker.department == "X"'}
approval:
  routes:
    - {name: strict, when: "false", approver: manager, second_approver: grace.hopper, delegates: [managers-manager, ada.lovelace], timeout: 7d}
    - {name: stricter, when: "false", approver: managers-manager, timeout: 7d}
    - {name: default, approver: manager, timeout: 7d}
credentials: {wrap_ttl: 1h}
exceptions:
  - name: x-gets-d-not-b
    when: worker.department == "X"
    add_groups: [d]
    remove_groups: [b]
    approval: strict
  - name: y-stricter
    when: worker.location == "Y"
    approval: stricter
  - name: re-add-b
    when: worker.location == "Y"
    add_groups: [b]
`

func TestExceptions(t *testing.T) {
	p := mustParse(t, exceptionPolicy)
	base := Worker{Kind: KindEmployee, FirstName: "Ann", ManagerUsername: "boss", ManagersManagerUsername: "bigboss"}
	with := func(f func(*Worker)) Worker { w := base; f(&w); return w }
	tests := []struct {
		name       string
		worker     Worker
		groups     []Grant
		exceptions []string
		approval   ApprovalPlan
	}{
		{"none apply", base,
			[]Grant{{Group: "a", Rule: "a-for-all", Source: "birthright"}, {Group: "b", Rule: "b-for-all", Source: "birthright"}},
			nil, ApprovalPlan{Rule: "default", Approver: "boss", Timeout: 7 * 24 * time.Hour}},
		{"remove, add and route override", with(func(w *Worker) { w.Department = "X" }),
			[]Grant{{Group: "a", Rule: "a-for-all", Source: "birthright"},
				{Group: "c", Rule: "c-for-x", Source: "birthright", Condition: `worker.department == "X"`},
				{Group: "d", Rule: "x-gets-d-not-b", Source: "exception", Condition: `worker.department == "X"`}},
			[]string{"x-gets-d-not-b"},
			ApprovalPlan{Rule: "strict", OverriddenBy: "x-gets-d-not-b", Approver: "boss", SecondApprover: "grace.hopper",
				Delegates: []string{"bigboss", "ada.lovelace"}, Timeout: 7 * 24 * time.Hour}},
		{"later exceptions win", with(func(w *Worker) { w.Department, w.Location = "X", "Y" }),
			[]Grant{{Group: "a", Rule: "a-for-all", Source: "birthright"},
				{Group: "c", Rule: "c-for-x", Source: "birthright", Condition: `worker.department == "X"`},
				{Group: "d", Rule: "x-gets-d-not-b", Source: "exception", Condition: `worker.department == "X"`},
				{Group: "b", Rule: "re-add-b", Source: "exception", Condition: `worker.location == "Y"`}},
			[]string{"x-gets-d-not-b", "y-stricter", "re-add-b"},
			ApprovalPlan{Rule: "stricter", OverriddenBy: "y-stricter", Approver: "bigboss", Timeout: 7 * 24 * time.Hour}},
		{"delegate equal to second approver is dropped", with(func(w *Worker) { w.Department, w.ManagersManagerUsername = "X", "grace.hopper" }),
			nil, []string{"x-gets-d-not-b"},
			ApprovalPlan{Rule: "strict", OverriddenBy: "x-gets-d-not-b", Approver: "boss", SecondApprover: "grace.hopper",
				Delegates: []string{"ada.lovelace"}, Timeout: 7 * 24 * time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := p.Plan(tt.worker)
			require.NoError(t, err)
			if tt.groups != nil {
				require.Equal(t, tt.groups, plan.Groups)
			}
			require.Equal(t, tt.exceptions, plan.Exceptions)
			require.Equal(t, tt.approval, plan.Approval)
		})
	}
}

func TestKindGroupAllowList(t *testing.T) {
	p := mustParse(t, exceptionPolicy)
	plan, err := p.Plan(Worker{Kind: KindServiceAccount, FirstName: "bot", ManagerUsername: "boss"})
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, plan.GroupNames())
	require.Len(t, plan.Withheld, 1)
	require.Equal(t, "b", plan.Withheld[0].Group)
	require.Equal(t, "b-for-all", plan.Withheld[0].Rule)
	require.Contains(t, plan.Withheld[0].Reason, "kind service-account may only hold [a]")
}

func TestApproverResolution(t *testing.T) {
	p := mustParse(t, exceptionPolicy)
	_, err := p.Plan(Worker{Kind: KindEmployee, FirstName: "Ann"})
	require.Equal(t, []string{"managerUsername"}, fields(t, err))
	require.Contains(t, err.Error(), "approval route default asks the manager")

	_, err = p.Plan(Worker{Kind: KindEmployee, FirstName: "Ann", Department: "X", ManagerUsername: "grace.hopper"})
	require.Equal(t, []string{"managerUsername"}, fields(t, err))
	require.Contains(t, err.Error(), "both approver and second approver")
}

func TestEvaluationErrorNamesRule(t *testing.T) {
	p := mustParse(t, `label: t
groups: [g]
naming: {patterns: [{pattern: "{first}"}]}
kinds: {employee: {ou: people}}
birthright:
  - {name: big-number, group: g, when: 'int(worker.employeeNumber) > 5'}
approval: {routes: [{name: d, approver: root.approver, timeout: 1d}]}
credentials: {wrap_ttl: 1h}
`)
	plan, err := p.Plan(Worker{Kind: KindEmployee, FirstName: "a", EmployeeNumber: "10"})
	require.NoError(t, err)
	require.Equal(t, []string{"g"}, plan.GroupNames())
	_, err = p.Plan(Worker{Kind: KindEmployee, FirstName: "a", EmployeeNumber: "ten"})
	var pe *PolicyError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "birthright[0].when", pe.Path)
	require.Contains(t, pe.Reason, "evaluation failed")
	require.False(t, IsValidationError(err))
}

func TestAttributeExpressions(t *testing.T) {
	p := loadDefault(t)
	w := machine(KindServiceAccount, "staging")
	plan, err := p.Plan(w)
	require.NoError(t, err)
	require.Equal(t, "Deploys the web app (staging)", plan.Attributes["description"])
	require.Equal(t, "deploy-bot", plan.Attributes["cn"])
	require.Equal(t, "service-accounts", plan.OU)

	w2 := jose()
	w2.PreferredName = "Pepe"
	plan, err = p.Plan(w2)
	require.NoError(t, err)
	require.Equal(t, "Pepe Ñúñez", plan.Attributes["displayName"])
	require.Equal(t, "pepe.nunez", plan.Candidates[0], "default policy uses preferred names")
}
