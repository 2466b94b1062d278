package inbox

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/workflows"
)

// --- clock -----------------------------------------------------------------

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// --- directory -------------------------------------------------------------

// fakeDirectory knows the seed people's dev passwords; edsger is disabled.
type fakeDirectory struct {
	mu    sync.Mutex
	calls int
	down  bool
}

var seedPasswords = map[string]string{
	"ada.lovelace": "dev-ada-pass", "grace.hopper": "dev-grace-pass", "alan.turing": "dev-alan-pass",
}

func (f *fakeDirectory) Authenticate(_ context.Context, username, password string) (directory.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return directory.Identity{}, io.ErrUnexpectedEOF
	}
	if pw, ok := seedPasswords[username]; ok && pw == password && password != "" {
		return directory.Identity{Username: username, DN: "uid=" + username + ",ou=people,dc=joinery,dc=test", DisplayName: username}, nil
	}
	return directory.Identity{}, directory.ErrInvalidCredentials
}

func (f *fakeDirectory) Calls() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// --- signer ----------------------------------------------------------------

// countingSigner counts signatures: the adversary tests assert that a
// refused request signed nothing.
type countingSigner struct {
	*decision.FileSigner
	mu sync.Mutex
	n  int
}

func (c *countingSigner) Sign(ctx context.Context, d decision.Decision) (decision.Signed, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.FileSigner.Sign(ctx, d)
}

func (c *countingSigner) Count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// --- Temporal --------------------------------------------------------------

type fakeJoiner struct {
	status workflows.Status
	// result is a closed joiner's result (GetWorkflow().Get).
	result    *workflows.JoinerResult
	running   bool
	deciders  []string
	decidedBy []string
}

type sentSignal struct {
	ID, Name string
	Arg      any
}

// fakeTemporal answers the five calls the inbox makes from an in-memory
// table, and records what the inbox sent.
type fakeTemporal struct {
	mu      sync.Mutex
	joiners map[string]*fakeJoiner
	updates []client.UpdateWorkflowOptions
	signals []sentSignal
	queries []string
	// answer is the decide update's result; refuse, if set, its error.
	answer string
	refuse error
}

func newFakeTemporal() *fakeTemporal {
	return &fakeTemporal{joiners: map[string]*fakeJoiner{}, answer: "approved"}
}

func (f *fakeTemporal) put(id string, j *fakeJoiner) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joiners[id] = j
}

var queryValue = regexp.MustCompile(`(\w+) = '((?:[^'\\]|\\.)*)'`)

// testPseudonymKey is the fake inbox's pseudonym key.
const testPseudonymKey = "inbox-test-pseudonym-key-0123456789abcdef"

func testPseudonyms(t testing.TB) *pseudonym.Keyer {
	k, err := pseudonym.New(testPseudonymKey)
	require.NoError(t, err)
	return k
}

func (f *fakeTemporal) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, req.GetQuery())
	// The inbox asks "(A = 'x' OR A = 'y') AND ExecutionStatus = 'Running'":
	// every value of the first attribute matches.
	ms := queryValue.FindAllStringSubmatch(req.GetQuery(), -1)
	if ms == nil {
		return nil, serviceerror.NewInvalidArgument("bad query " + req.GetQuery())
	}
	attr := ms[0][1]
	var vals []string
	for _, m := range ms {
		if m[1] == attr {
			vals = append(vals, strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[2]))
		}
	}
	onlyRunning := strings.Contains(req.GetQuery(), "ExecutionStatus = 'Running'")
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	ids := make([]string, 0, len(f.joiners))
	for id := range f.joiners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		j := f.joiners[id]
		list := j.deciders
		if attr == workflows.SADecidedBy.GetName() {
			list = j.decidedBy
		}
		if !slices.ContainsFunc(vals, func(v string) bool { return slices.Contains(list, v) }) || (onlyRunning && !j.running) {
			continue
		}
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: id}, Status: execStatus(j.running)})
	}
	return resp, nil
}

func execStatus(running bool) enumspb.WorkflowExecutionStatus {
	if running {
		return enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	}
	return enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
}

func (f *fakeTemporal) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.joiners[id]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + id}, Type: &commonpb.WorkflowType{Name: "Joiner"},
		Status: execStatus(j.running)}}, nil
}

type jsonValue struct{ b []byte }

func (v jsonValue) HasValue() bool    { return len(v.b) > 0 }
func (v jsonValue) Get(ptr any) error { return json.Unmarshal(v.b, ptr) }
func (f *fakeTemporal) QueryWorkflow(_ context.Context, id, _ string, q string, _ ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.joiners[id]
	if !ok || q != workflows.QueryStatus {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	b, err := json.Marshal(j.status)
	return jsonValue{b}, err
}

type fakeHandle struct {
	answer string
	err    error
}

func (h fakeHandle) WorkflowID() string { return "" }
func (h fakeHandle) RunID() string      { return "" }
func (h fakeHandle) UpdateID() string   { return "" }
func (h fakeHandle) Get(_ context.Context, ptr any) error {
	if h.err != nil {
		return h.err
	}
	*(ptr.(*string)) = h.answer
	return nil
}

func (f *fakeTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, o)
	return fakeHandle{answer: f.answer, err: f.refuse}, nil
}

func (f *fakeTemporal) SignalWorkflow(_ context.Context, id, _ string, name string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.joiners[id]; !ok {
		return serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	f.signals = append(f.signals, sentSignal{id, name, arg})
	return nil
}

type fakeRun struct {
	id  string
	res *workflows.JoinerResult
}

func (r fakeRun) GetID() string                  { return r.id }
func (r fakeRun) GetRunID() string               { return "" }
func (r fakeRun) GetFirstExecutionRunID() string { return "" }
func (r fakeRun) Get(_ context.Context, ptr any) error {
	if r.res == nil {
		return serviceerror.NewNotFound("no result for " + r.id)
	}
	*(ptr.(*workflows.JoinerResult)) = *r.res
	return nil
}
func (r fakeRun) GetWithOptions(ctx context.Context, ptr any, _ client.WorkflowRunGetOptions) error {
	return r.Get(ctx, ptr)
}

func (f *fakeTemporal) GetWorkflow(_ context.Context, id, _ string) client.WorkflowRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	run := fakeRun{id: id}
	if j, ok := f.joiners[id]; ok && !j.running {
		run.res = j.result
	}
	return run
}

func (f *fakeTemporal) sent() ([]client.UpdateWorkflowOptions, []sentSignal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.updates), slices.Clone(f.signals)
}

// --- fixtures --------------------------------------------------------------

func testPlan() *policy.Plan {
	return &policy.Plan{
		PolicyVersion: "default@2026-11-30", Kind: "employee", OU: "ou=people",
		Candidates:    []string{"john.smith", "jsmith"},
		UsernameRules: []policy.CandidateRule{{Candidate: "john.smith", Pattern: "{first}.{last}", Rule: "naming.patterns[0]"}, {Candidate: "jsmith", Pattern: "{f}{last}", Rule: "naming.patterns[1]"}},
		Groups: []policy.Grant{{Group: "all-staff", Rule: "everyone", Source: "birthright"},
			{Group: "engineering", Rule: "engineers", Source: "birthright", Condition: `worker.department == "Engineering"`}},
		WriteBack: []string{"workEmail"}, WriteBackTemplates: map[string]string{"workEmail": "{username}@joinery.test"},
		Approval: policy.ApprovalPlan{Rule: "manager", Approver: "ada.lovelace"},
	}
}

// awaiting is a joiner waiting for ada's approval.
func awaiting(t *testing.T, hris string) *fakeJoiner {
	t.Helper()
	p := testPlan()
	h, err := decision.PlanHash(p)
	require.NoError(t, err)
	return &fakeJoiner{running: true, deciders: []string{"ada.lovelace"}, status: workflows.Status{
		HRISID: hris, Stage: workflows.StageAwaitingApproval, PolicyVersion: p.PolicyVersion, Plan: p, PlanHash: h,
		Approvers: []string{"ada.lovelace"},
	}}
}

// fakeWrapping is Vault's response wrapping in memory.
type fakeWrapping struct {
	mu     sync.Mutex
	tokens map[string]fakeWrapped
}

type fakeWrapped struct {
	created time.Time
	ttl     time.Duration
	data    map[string]any
}

func (f *fakeWrapping) Lookup(_ context.Context, tok string) (WrapInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.tokens[tok]
	if !ok {
		return WrapInfo{}, ErrWrapInvalid
	}
	return WrapInfo{CreationTime: w.created, TTL: w.ttl, CreationPath: "secret/data/x"}, nil
}

func (f *fakeWrapping) Unwrap(_ context.Context, tok string) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.tokens[tok]
	if !ok {
		return nil, ErrWrapInvalid
	}
	delete(f.tokens, tok)
	return w.data, nil
}

// env is one inbox under test, reached through a real HTTP server.
type env struct {
	t        *testing.T
	srv      *Server
	ts       *httptest.Server
	clock    *fakeClock
	dir      *fakeDirectory
	temporal *fakeTemporal
	signer   *countingSigner
	wrapping *fakeWrapping
	handover string
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e := &env{t: t, clock: &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}, dir: &fakeDirectory{},
		temporal: newFakeTemporal(), signer: &countingSigner{FileSigner: decision.NewFileSigner(key)},
		wrapping: &fakeWrapping{tokens: map[string]fakeWrapped{}}, handover: t.TempDir()}
	var h http.Handler
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	cfg := Config{BaseURL: e.ts.URL, SessionIdle: 30 * time.Minute, SessionMax: 8 * time.Hour, HandoverDir: e.handover}
	for _, m := range mutate {
		m(&cfg)
	}
	e.srv, err = New(cfg, Deps{Auth: e.dir, Signer: e.signer, Temporal: e.temporal, Wrapping: e.wrapping,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.clock.Now, Pseudonyms: testPseudonyms(t)})
	require.NoError(t, err)
	h = e.srv.Handler()
	return e
}

// browser is a person's browser: a cookie jar, no automatic redirects, and
// the inbox's own Origin on every post (as a browser sends it).
type browser struct {
	e      *env
	c      *http.Client
	origin string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, origin: e.ts.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	Code   int
	Body   string
	Header http.Header
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.e.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, string(body), resp.Header}
}

func (b *browser) get(path string) page {
	req, _ := http.NewRequest(http.MethodGet, b.e.ts.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, b.e.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
	require.NotNil(t, m, "page has a CSRF field: %s", p.Body)
	return m[1]
}

// login signs in through the form and returns the response to the post.
func (b *browser) login(user, pass string) page {
	b.e.t.Helper()
	form := b.get("/login")
	require.Equal(b.e.t, http.StatusOK, form.Code)
	return b.post("/login", url.Values{"csrf": {csrfOf(b.e.t, form)}, "username": {user}, "password": {pass}})
}

func (b *browser) mustLogin(user, pass string) {
	b.e.t.Helper()
	p := b.login(user, pass)
	require.Equal(b.e.t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(b.e.t, "/", p.Header.Get("Location"))
}

func (b *browser) sessionCookie() *http.Cookie {
	u, _ := url.Parse(b.e.ts.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == b.e.srv.sessionCookieName() {
			return c
		}
	}
	return nil
}
