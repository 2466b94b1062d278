package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Expect is what a joiner's final state says must exist on the servers.
type Expect int

const (
	// Live: the joiner is Provisioned, Active or Completed; exactly one
	// entry, its memberships, one credential and its write-back exist.
	Live Expect = iota
	// Gone: the joiner was rolled back (rescinded, revoked, failed,
	// rejected) or never got as far as creating anything; nothing of it
	// may remain anywhere.
	Gone
	// Disabled: time-bound access that was revoked (cancel, revoke,
	// expiry). The entry may stay for the record, but only disabled; no
	// membership, secret, token, SecretID, AppRole or policy may remain.
	Disabled
	// HandedBack: a rehire generation that was rolled back. Its entry is
	// the earlier generation's and is never deleted: exactly one entry,
	// disabled (carrying the marker AuditOwners names, if any); no
	// membership, readable secret or live wrapping token may remain, and
	// the HR fields it wrote are restored (the suite's leavers carry none,
	// so none may be set).
	HandedBack
)

// Owner is the ownership marker an entry must carry (AuditOwners): the
// joiner's workflow ID, e.g. joiner-123~g2 for a rehire generation, and,
// when not empty, the run.
type Owner struct {
	Joiner, Run string
}

// String names the expectation.
func (e Expect) String() string {
	switch e {
	case Live:
		return "live"
	case Disabled:
		return "disabled"
	case HandedBack:
		return "handed back"
	}
	return "gone"
}

// Auditor reads the real servers directly — LDAP as the rootdn, Vault
// with the root token, the HRIS with its API key — and reports what is
// there. It shares no code with the product it audits: the connectors'
// idea of "created" or "revoked" is exactly what it must not trust.
type Auditor struct {
	LDAPURL, BindDN, BindPassword, BaseDN string
	VaultAddr, VaultToken                 string
	// KVMount and PathPrefix locate joiners' secrets (secret, joinery/joiners).
	KVMount, PathPrefix              string
	HRISURL, HRISCompany, HRISAPIKey string
	HTTP                             *http.Client
}

// Finding is one thing on a server that should not be there (or is
// missing), with the joiner it belongs to.
type Finding struct {
	Joiner, Server, What string
}

// String renders the finding for a test log.
func (f Finding) String() string { return fmt.Sprintf("joiner %s: %s: %s", f.Joiner, f.Server, f.What) }

// Report is an audit's result: findings and what was counted.
type Report struct {
	Findings []Finding
	// Entries, Memberships, Secrets, WrapTokens count what a live joiner
	// legitimately holds.
	Entries, Memberships, Secrets, WrapTokens, WriteBacks int
}

// OK reports a clean audit.
func (r Report) OK() bool { return len(r.Findings) == 0 }

func (r *Report) add(joiner, server, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Joiner: joiner, Server: server, What: fmt.Sprintf(format, args...)})
}

// Audit checks every joiner in want (HRIS ID → expectation). Global checks
// (a membership naming a deleted entry, a wrapping token for a path no live
// joiner owns) cover things Joinery may have lost track of.
func (a *Auditor) Audit(ctx context.Context, want map[string]Expect) (Report, error) {
	return a.AuditOwners(ctx, want, nil)
}

// AuditOwners is Audit that also requires the entry of each joiner in
// owners to carry that marker (a rehire generation's, or the earlier
// generation's after a hand-back) and, when it is Live, to be enabled.
func (a *Auditor) AuditOwners(ctx context.Context, want map[string]Expect, owners map[string]Owner) (Report, error) {
	var r Report
	if err := a.auditLDAP(ctx, want, owners, &r); err != nil {
		return r, fmt.Errorf("ldap: %w", err)
	}
	if err := a.auditVault(ctx, want, &r); err != nil {
		return r, fmt.Errorf("vault: %w", err)
	}
	if err := a.auditHRIS(ctx, want, &r); err != nil {
		return r, fmt.Errorf("hris: %w", err)
	}
	sort.Slice(r.Findings, func(i, j int) bool { return r.Findings[i].String() < r.Findings[j].String() })
	return r, nil
}

func (a *Auditor) auditLDAP(ctx context.Context, want map[string]Expect, owners map[string]Owner, r *Report) error {
	conn, err := ldap.DialURL(a.LDAPURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Bind(a.BindDN, a.BindPassword); err != nil {
		return err
	}
	// Every entry that names one of our joiners, by employee number or by
	// the ownership marker: the marker may be missing on a broken entry,
	// the employee number on a non-human one.
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(a.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(|(employeeNumber=*)(joineryJoiner=*))", []string{"employeeNumber", "joineryJoiner", "joineryRun", "uid", "cn", "description", "userPassword"}, nil), 500)
	if err != nil {
		return err
	}
	byJoiner := map[string][]string{}
	exists := map[string]bool{}
	enabled := map[string]bool{}
	byUID := map[string][]string{}
	marker := map[string]Owner{}
	for _, e := range res.Entries {
		exists[strings.ToLower(e.DN)] = true
		// Enabled unless it carries a disabled marker or a locked password.
		enabled[e.DN] = !strings.Contains(strings.ToLower(strings.Join(e.GetAttributeValues("description"), " ")), "disabled")
		for _, uid := range e.GetAttributeValues("uid") {
			byUID[strings.ToLower(uid)] = append(byUID[strings.ToLower(uid)], e.DN)
		}
		id := e.GetAttributeValue("employeeNumber")
		if m := e.GetAttributeValue("joineryJoiner"); m != "" {
			// A rehire generation's marker is joiner-<id>~g<N>: the same
			// person's entry, so it counts (and duplicates) as theirs.
			id = markerKey(m)
		}
		marker[e.DN] = Owner{Joiner: e.GetAttributeValue("joineryJoiner"), Run: e.GetAttributeValue("joineryRun")}
		if _, ours := want[id]; ours {
			byJoiner[id] = append(byJoiner[id], e.DN)
		}
	}
	for id, exp := range want {
		dns := byJoiner[id]
		switch {
		case exp == Gone && len(dns) > 0:
			r.add(id, "ldap", "entry left after rollback: %s", strings.Join(dns, "; "))
		case exp == Disabled && len(dns) == 1 && enabled[dns[0]]:
			r.add(id, "ldap", "entry still enabled after revocation: %s", dns[0])
		case exp == HandedBack && len(dns) == 0:
			r.add(id, "ldap", "no entry after a rehire's rollback (it must be kept, disabled)")
		case exp == HandedBack && len(dns) == 1 && enabled[dns[0]]:
			r.add(id, "ldap", "entry still enabled after the rehire's rollback: %s", dns[0])
		case exp == Live && len(dns) == 0:
			r.add(id, "ldap", "no entry for a provisioned joiner")
		case len(dns) > 1:
			r.add(id, "ldap", "%d entries (duplicates): %s", len(dns), strings.Join(dns, "; "))
		}
		if exp == Live {
			r.Entries += len(dns)
		}
		if o, ok := owners[id]; ok && len(dns) == 1 {
			got := marker[dns[0]]
			if got.Joiner != o.Joiner || (o.Run != "" && got.Run != o.Run) {
				r.add(id, "ldap", "entry %s carries the marker %s (run %q), want %s (run %q)", dns[0], got.Joiner, got.Run, o.Joiner, o.Run)
			}
			if exp == Live && !enabled[dns[0]] {
				r.add(id, "ldap", "entry of a provisioned rehire is disabled: %s", dns[0])
			}
		}
	}
	// One username, one entry, across every container (a cross-OU
	// duplicate is what a claim race would leave).
	for uid, dns := range byUID {
		if len(dns) < 2 {
			continue
		}
		for _, dn := range dns {
			if id, ok := ownerOf(byJoiner, dn); ok {
				r.add(id, "ldap", "username %s held by %d entries: %s", uid, len(dns), strings.Join(dns, "; "))
				break
			}
		}
	}
	// Memberships: a member value naming a deleted entry is residue (a DN
	// reused later would inherit the access); one naming a gone joiner's
	// entry is an orphaned grant.
	owner := map[string]string{}
	for id, dns := range byJoiner {
		for _, dn := range dns {
			owner[strings.ToLower(dn)] = id
		}
	}
	groups, err := conn.SearchWithPaging(ldap.NewSearchRequest("ou=groups,"+a.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))", []string{"cn", "member", "uniqueMember"}, nil), 500)
	if err != nil {
		return err
	}
	for _, g := range groups.Entries {
		members := append(g.GetAttributeValues("member"), g.GetAttributeValues("uniqueMember")...)
		for _, m := range members {
			lm := strings.ToLower(m)
			if !strings.Contains(lm, "ou=people,") && !strings.Contains(lm, "ou=service-accounts,") {
				continue // placeholders, nested groups
			}
			id, known := owner[lm]
			switch {
			case !exists[lm] && !isSeedDN(conn, m):
				r.add(orUnknown(id, m), "ldap", "group %s lists %s, which does not exist", g.GetAttributeValue("cn"), m)
			case known && want[id] != Live:
				r.add(id, "ldap", "member of %s after %s", g.GetAttributeValue("cn"), after(want[id]))
			case known:
				r.Memberships++
			}
		}
	}
	return nil
}

// markerKey is the joiner key of an ownership marker: joiner-<key> and
// every rehire generation joiner-<key>~g<N> of it.
func markerKey(m string) string {
	k := strings.TrimPrefix(m, "joiner-")
	if i := strings.LastIndex(k, "~g"); i > 0 {
		k = k[:i]
	}
	return k
}

func ownerOf(byJoiner map[string][]string, dn string) (string, bool) {
	for id, dns := range byJoiner {
		for _, d := range dns {
			if strings.EqualFold(d, dn) {
				return id, true
			}
		}
	}
	return "", false
}

// isSeedDN reports whether dn exists at all (seed entries carry neither
// employeeNumber nor marker in some fixtures).
func isSeedDN(conn *ldap.Conn, dn string) bool {
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 5, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	return err == nil && len(res.Entries) == 1
}

func orUnknown(id, dn string) string {
	if id != "" {
		return id
	}
	return "?(" + dn + ")"
}

func (a *Auditor) auditVault(ctx context.Context, want map[string]Expect, r *Report) error {
	// Secrets: one initial credential per live joiner, none for a gone one.
	keys, err := a.vaultList(ctx, a.KVMount+"/metadata/"+a.PathPrefix)
	if err != nil {
		return err
	}
	stored := map[string]bool{}
	for _, k := range keys {
		stored[strings.TrimSuffix(k, "/")] = true
	}
	for id, exp := range want {
		if !stored[id] {
			if exp == Live {
				r.add(id, "vault", "no secret for a provisioned joiner")
			}
			continue
		}
		names, err := a.vaultList(ctx, a.KVMount+"/metadata/"+a.PathPrefix+"/"+id)
		if err != nil {
			return err
		}
		for _, n := range names {
			live, err := a.liveVersions(ctx, a.PathPrefix+"/"+id+"/"+n)
			if err != nil {
				return err
			}
			switch {
			case exp != Live && live > 0:
				r.add(id, "vault", "secret %s has %d readable version(s) after %s", n, live, after(exp))
			case exp == Live && live > 1 && !strings.HasSuffix(n, "-index"):
				// A handover index (accessors only, no secret) keeps its
				// versions; a secret or a ledger must not.
				r.add(id, "vault", "secret %s has %d readable versions (earlier ones not destroyed)", n, live)
			case exp == Live && live == 1:
				r.Secrets++
			}
		}
	}
	// Wrapping tokens: every live one must be for a live joiner, at most
	// one per joiner and secret.
	accessors, err := a.vaultList(ctx, "auth/token/accessors")
	if err != nil {
		return err
	}
	perPath := map[string]int{}
	for _, acc := range accessors {
		data, err := a.vaultWrite(ctx, "auth/token/lookup-accessor", map[string]any{"accessor": acc})
		if err != nil {
			continue // expired between list and lookup
		}
		path, _ := data["path"].(string)
		if !isWrapping(data) {
			continue
		}
		var id string
		switch {
		case strings.Contains(path, "/"+a.PathPrefix+"/"):
			id = joinerOfPath(path, a.PathPrefix)
		case strings.Contains(path, "/role/joinery-nhi-"):
			// A workload's wrapped SecretID: auth/approle/role/joinery-<key>/secret-id.
			_, rest, _ := strings.Cut(path, "/role/joinery-")
			id, _, _ = strings.Cut(rest, "/")
		default:
			continue
		}
		exp, ours := want[id]
		if !ours {
			continue
		}
		if exp != Live {
			r.add(id, "vault", "live wrapping token (accessor %s) for %s after %s", acc, path, after(exp))
			continue
		}
		perPath[path]++
		r.WrapTokens++
	}
	for path, n := range perPath {
		if n > 1 {
			r.add(joinerOfPath(path, a.PathPrefix), "vault", "%d live wrapping tokens for %s (a retry did not revoke the earlier ones)", n, path)
		}
	}
	// AppRoles and policies Joinery generates for workloads: one per live
	// non-human joiner, none for a gone one.
	roles, err := a.vaultList(ctx, "auth/approle/role")
	if err != nil {
		return err
	}
	for _, role := range roles {
		if !strings.HasPrefix(role, "joinery-nhi-") {
			continue
		}
		id := strings.TrimPrefix(role, "joinery-")
		if exp, ours := want[id]; ours && exp != Live {
			ids, _ := a.vaultList(ctx, "auth/approle/role/"+role+"/secret-id")
			r.add(id, "vault", "AppRole %s (%d SecretIDs) after %s", role, len(ids), after(exp))
		}
	}
	policies, err := a.vaultList(ctx, "sys/policies/acl")
	if err != nil {
		return err
	}
	for _, p := range policies {
		if !strings.HasPrefix(p, "joinery-nhi-") {
			continue
		}
		for id, exp := range want {
			if exp != Live && strings.HasPrefix(p, "joinery-"+id) {
				r.add(id, "vault", "policy %s after %s", p, after(exp))
			}
		}
	}
	return nil
}

// after names what should have removed a thing.
func after(e Expect) string {
	if e == Disabled {
		return "revocation"
	}
	return "rollback"
}

func isWrapping(lookup map[string]any) bool {
	pol, _ := lookup["policies"].([]any)
	for _, p := range pol {
		if p == "response-wrapping" {
			return true
		}
	}
	return false
}

// joinerOfPath extracts the joiner key of .../<prefix>/<key>/<name>.
func joinerOfPath(path, prefix string) string {
	_, rest, ok := strings.Cut(path, "/"+prefix+"/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// liveVersions counts the versions of a KV v2 secret that can still be
// read (neither destroyed nor deleted).
func (a *Auditor) liveVersions(ctx context.Context, logical string) (int, error) {
	data, err := a.vaultRead(ctx, a.KVMount+"/metadata/"+logical)
	if err != nil || data == nil {
		return 0, err
	}
	versions, _ := data["versions"].(map[string]any)
	n := 0
	for _, v := range versions {
		m, _ := v.(map[string]any)
		destroyed, _ := m["destroyed"].(bool)
		deleted, _ := m["deletion_time"].(string)
		if !destroyed && deleted == "" {
			n++
		}
	}
	return n, nil
}

func (a *Auditor) auditHRIS(ctx context.Context, want map[string]Expect, r *Report) error {
	for id, exp := range want {
		if strings.HasPrefix(id, "nhi-") {
			continue
		}
		u := fmt.Sprintf("%s/api/gateway.php/%s/v1/employees/%s?fields=workEmail,customUsername",
			strings.TrimRight(a.HRISURL, "/"), a.HRISCompany, url.PathEscape(id))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.SetBasicAuth(a.HRISAPIKey, "x")
		req.Header.Set("Accept", "application/json")
		var got map[string]any
		if err := a.do(req, &got); err != nil {
			return fmt.Errorf("employee %s: %w", id, err)
		}
		email, _ := got["workEmail"].(string)
		user, _ := got["customUsername"].(string)
		switch {
		case (exp == Gone || exp == HandedBack) && (email != "" || user != ""):
			r.add(id, "hris", "write-back left after rollback: workEmail=%q customUsername=%q", email, user)
		case exp == Live && (email == "" || user == ""):
			r.add(id, "hris", "write-back missing for a provisioned joiner: workEmail=%q customUsername=%q", email, user)
		case exp == Live:
			r.WriteBacks++
		}
	}
	return nil
}

func (a *Auditor) client() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (a *Auditor) vaultRequest(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.VaultAddr, "/")+"/v1/"+path, rd)
	req.Header.Set("X-Vault-Token", a.VaultToken)
	var out struct {
		Data map[string]any `json:"data"`
	}
	err := a.do(req, &out)
	var nf errNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	return out.Data, err
}

func (a *Auditor) vaultRead(ctx context.Context, path string) (map[string]any, error) {
	return a.vaultRequest(ctx, http.MethodGet, path, nil)
}

func (a *Auditor) vaultWrite(ctx context.Context, path string, body any) (map[string]any, error) {
	return a.vaultRequest(ctx, http.MethodPost, path, body)
}

func (a *Auditor) vaultList(ctx context.Context, path string) ([]string, error) {
	data, err := a.vaultRequest(ctx, "LIST", path, nil)
	if err != nil || data == nil {
		return nil, err
	}
	raw, _ := data["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		if s, ok := k.(string); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

type errNotFound struct{ url string }

func (e errNotFound) Error() string { return "not found: " + e.url }

func (a *Auditor) do(req *http.Request, out any) error {
	resp, err := a.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode == http.StatusNotFound {
		return errNotFound{req.URL.Path}
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	if len(body) == 0 || out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}
