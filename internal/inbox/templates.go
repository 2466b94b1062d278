package inbox

import (
	"html/template"
	"net/http"
	"strings"
	"time"
)

// The pages are server-rendered with html/template (contextual escaping:
// everything that came from HR, the policy or a person is escaped where it
// lands) and use no script at all, which is what lets the CSP forbid it.

const layoutHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Joinery inbox</title>
<link rel="stylesheet" href="/style.css">
</head><body>
<header><a href="/" class="brand">Joinery inbox</a>
{{if .User}}<nav><a href="/">Waiting for me</a> <a href="/decisions">My decisions</a> <a href="/handover">Credential handover</a></nav>
<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="{{.CSRF}}">
<span>{{.DisplayName}} ({{.User}})</span> <button type="submit">Sign out</button></form>{{end}}
</header>
<main>
{{if .Flash}}<p class="flash">{{.Flash}}</p>{{end}}
{{template "content" .}}
</main></body></html>`

const styleCSS = `body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.2em;background:#263238;color:#fff}
header a{color:#fff;text-decoration:none;margin-right:1em}.brand{font-weight:bold}
.logout{margin-left:auto}main{max-width:70em;margin:1.5em auto;padding:0 1.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}
code{background:#eceff1;padding:0 .25em}.flash{background:#fff3cd;padding:.6em;border:1px solid #e0c36c}
.alarm{background:#fdecea;border:1px solid #d93025;padding:.8em}.secret{font-family:monospace;font-size:1.2em;background:#fff;border:1px dashed #888;padding:.6em}
form.decide{margin:1em 0;padding:1em;border:1px solid #ccc;background:#fff}textarea{width:100%;max-width:40em}
`

const loginHTML = `{{define "content"}}<h1>Sign in</h1>
<p>Use your directory account. Decisions you make here are signed in your name.</p>
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{.Data.Token}}"><input type="hidden" name="next" value="{{.Data.Next}}">
<p><label>Username <input name="username" autocomplete="username" required maxlength="64" value="{{.Data.Username}}"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label></p>
<p><button type="submit">Sign in</button></p>
</form>{{end}}`

const waitingHTML = `{{define "content"}}<h1>Waiting for me</h1>
{{if not .Data}}<p>Nothing is waiting for your decision.</p>{{else}}
<table><tr><th>Joiner</th><th>Kind</th><th>Stage</th><th>You may</th><th>Policy</th></tr>
{{range .Data}}<tr><td><a href="/joiners/{{.ID}}">{{.ID}}</a></td><td>{{with .Status.Plan}}{{.Kind}}{{end}}</td>
<td>{{.Status.Stage}}</td><td>{{.May}}</td><td>{{.Status.PolicyVersion}}</td></tr>{{end}}
</table>{{end}}{{end}}`

const joinerHTML = `{{define "content"}}{{$j := .Data.Joiner}}{{$st := $j.Status}}
<h1>{{$j.ID}}</h1>
<table>
<tr><th>Stage</th><td>{{$st.Stage}}{{if not $j.Running}} (closed){{end}}</td></tr>
{{with $st.Plan}}<tr><th>Kind</th><td>{{.Kind}}</td></tr>
<tr><th>Directory OU</th><td>{{.OU}}</td></tr>
{{if .HireDate}}<tr><th>Start</th><td>{{.HireDate}} (provisioned {{.ProvisionDate}})</td></tr>{{end}}{{end}}
{{if $st.EndDate}}<tr><th>Access ends</th><td>{{$st.EndDate}}</td></tr>{{end}}
{{if $st.Owner}}<tr><th>Owner</th><td>{{$st.Owner}}</td></tr>{{end}}
<tr><th>Approvers</th><td>{{join $st.Approvers ", "}}{{if $st.SecondApprover}}; second approver {{$st.SecondApprover}}{{end}}</td></tr>
<tr><th>Policy version</th><td><code>{{$st.PolicyVersion}}</code></td></tr>
<tr><th>Plan hash</th><td><code>{{$st.PlanHash}}</code></td></tr>
</table>
{{with $st.Plan}}
<h2>Username candidates</h2>
<table><tr><th>#</th><th>Candidate</th><th>Pattern</th><th>Rule</th></tr>
{{range $i, $r := .UsernameRules}}<tr><td>{{inc $i}}</td><td><code>{{$r.Candidate}}</code></td><td><code>{{$r.Pattern}}</code></td><td>{{$r.Rule}}</td></tr>{{end}}
</table>
<h2>Groups</h2>
<table><tr><th>Group</th><th>Rule</th><th>Source</th><th>Condition (CEL)</th></tr>
{{range .Groups}}<tr><td>{{.Group}}</td><td>{{.Rule}}</td><td>{{.Source}}</td><td>{{if .Condition}}<code>{{.Condition}}</code>{{else}}always{{end}}</td></tr>{{end}}
</table>
{{if .Withheld}}<h3>Withheld</h3><table><tr><th>Group</th><th>Rule</th><th>Why</th></tr>
{{range .Withheld}}<tr><td>{{.Group}}</td><td>{{.Rule}}</td><td>{{.Reason}}</td></tr>{{end}}</table>{{end}}
{{if .WriteBack}}<h2>Written back to HR</h2><table><tr><th>Field</th><th>Value</th></tr>
{{$t := .WriteBackTemplates}}{{range .WriteBack}}<tr><td>{{.}}</td><td><code>{{index $t .}}</code></td></tr>{{end}}</table>{{end}}
{{if .Exceptions}}<p>Exceptions applied: {{join .Exceptions ", "}}</p>{{end}}
<p>Approval route <code>{{.Approval.Rule}}</code>{{if .Approval.OverriddenBy}} (chosen by exception {{.Approval.OverriddenBy}}){{end}}.</p>
{{end}}
{{if $st.Approvals}}<h2>Decisions so far</h2><table><tr><th>Who</th><th>Decision</th><th>Via</th><th>When</th><th>Comment</th></tr>
{{range $st.Approvals}}<tr><td>{{.Approver}}</td><td>{{if .Refused}}refused: {{.Refused}}{{else if .Approved}}approved{{else}}rejected{{end}}{{if .BreakGlass}} (break-glass){{end}}</td>
<td>{{.Via}}</td><td>{{when .At}}</td><td>{{.Comment}}</td></tr>{{end}}</table>{{end}}
{{if .Data.Rights.Decide}}
<form method="post" action="/joiners/{{$j.ID}}/decision" class="decide">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="planHash" value="{{$st.PlanHash}}">
<p><label>Comment<br><textarea name="comment" maxlength="1000" rows="3"></textarea></label></p>
<p><button type="submit" name="action" value="approve">Approve</button> <button type="submit" name="action" value="reject">Reject</button></p>
<p>Your decision is signed for plan <code>{{$st.PlanHash}}</code> under policy <code>{{$st.PolicyVersion}}</code>.</p>
</form>{{end}}
{{if .Data.Rights.Extend}}
<form method="post" action="/joiners/{{$j.ID}}/decision" class="decide">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="planHash" value="{{$st.PlanHash}}">
<input type="hidden" name="action" value="extend">
<p><label>Extend access to <input type="date" name="endDate" required></label></p>
<p><label>Why<br><textarea name="comment" maxlength="1000" rows="2"></textarea></label></p>
<p><button type="submit">Extend</button></p>
</form>{{end}}{{end}}`

const resultHTML = `{{define "content"}}<h1>{{.Data.Title}}</h1>
<p>{{.Data.Message}}</p>
{{if .Data.ID}}<p><a href="/joiners/{{.Data.ID}}">Back to {{.Data.ID}}</a> · <a href="/">Waiting for me</a></p>{{end}}{{end}}`

const decisionsHTML = `{{define "content"}}<h1>My decisions</h1>
{{if not .Data}}<p>You have not decided on any joiner yet.</p>{{else}}
<table><tr><th>Joiner</th><th>Stage</th><th>Decision</th><th>Via</th><th>When</th><th>Comment</th></tr>
{{range $p := .Data}}{{if $p.Unavailable}}<tr><td>{{$p.WorkflowID}}</td><td colspan="5">{{$p.Unavailable}}</td></tr>{{end}}
{{range $p.Decisions}}<tr><td><a href="/joiners/{{$p.WorkflowID}}">{{$p.WorkflowID}}</a></td><td>{{$p.Stage}}</td>
<td>{{if .Refused}}refused: {{.Refused}}{{else if .Approved}}approved{{else}}rejected{{end}}{{if .Signed}} (signed){{end}}</td>
<td>{{.Via}}</td><td>{{when .At}}</td><td>{{.Comment}}</td></tr>{{end}}{{end}}
</table>{{end}}{{end}}`

const handoverHTML = `{{define "content"}}<h1>Credential handover</h1>
<p>Initial credentials for the joiners you are responsible for wait here as single-use wrapped tokens.
Unwrapping shows the credential once; pass it on and it is gone from here.</p>
{{if not .Data}}<p>No credentials are waiting for you.</p>{{else}}
<table><tr><th>Joiner</th><th>Delivered</th><th>Expires</th><th>State</th><th></th></tr>
{{range .Data}}<tr><td>{{.Joiner}}</td><td>{{when .Delivered}}</td><td>{{if .Expires.IsZero}}unknown{{else}}{{when .Expires}}{{end}}</td>
<td>{{if .Alarm}}<span class="alarm">already unwrapped — possible interception; security has been told</span>{{else}}{{.State}}{{end}}</td>
<td>{{if .Redeemable}}<form method="post" action="/handover/{{.Joiner}}/unwrap"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">Unwrap</button></form>{{end}}</td></tr>{{end}}
</table>{{end}}{{end}}`

const credentialHTML = `{{define "content"}}<h1>Credential for {{.Data.Joiner}}</h1>
<p>This is shown once. It is no longer stored here and the wrapping token is spent.</p>
<table>{{range .Data.Fields}}<tr><th>{{.Name}}</th><td class="secret">{{.Value}}</td></tr>{{end}}</table>
<p><a href="/handover">Back to handover</a></p>{{end}}`

// pageTemplates holds each page parsed into its own copy of the layout.
type pageTemplates struct{ m map[string]*template.Template }

func parsePages() *pageTemplates {
	funcs := template.FuncMap{
		"join": strings.Join,
		"inc":  func(i int) int { return i + 1 },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
	}
	layout := template.Must(template.New("layout").Funcs(funcs).Parse(layoutHTML))
	pt := &pageTemplates{m: map[string]*template.Template{}}
	for name, text := range map[string]string{
		"login": loginHTML, "waiting": waitingHTML, "joiner": joinerHTML, "result": resultHTML,
		"decisions": decisionsHTML, "handover": handoverHTML, "credential": credentialHTML,
	} {
		pt.m[name] = template.Must(template.Must(layout.Clone()).Parse(text))
	}
	return pt
}

// pageData is what every page gets.
type pageData struct {
	Title       string
	User        string
	DisplayName string
	CSRF        string
	Flash       string
	Data        any
}

func (s *Server) render(w http.ResponseWriter, code int, name string, d pageData) {
	var b strings.Builder
	if err := s.pages.m[name].Execute(&b, d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// message renders a short result or error page.
func (s *Server) message(w http.ResponseWriter, code int, sess *session, title, msg, id string) {
	d := pageData{Title: title, Data: map[string]string{"Title": title, "Message": msg, "ID": id}}
	if sess != nil {
		d.User, d.DisplayName, d.CSRF = sess.user, sess.displayName, sess.csrf
	}
	s.render(w, code, "result", d)
}
