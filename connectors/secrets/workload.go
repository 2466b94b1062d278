package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// Non-human joiners (service accounts, pipelines, AI agents) get an AppRole
// whose token policy is what the joiner policy grants them. The worker must
// not be able to write ACL policies itself: a token that may write policy
// text of its choosing and bind it to a role it can log in as is a token
// that can make itself root. So the ACL policies workloads receive are
// pre-created by an operator (the Vault bootstrap), one per non-human kind,
// rendered from the joiner policy's path templates, and the worker's own
// policy lets it name only those policies as a role's token_policies.
//
// A kind's grant templates differ per joiner ({firstName}, {environment}),
// so the pre-created policy is an ACL template: each grant is rendered as
// its literal prefix (the text before the first placeholder, fixed by the
// operator) followed by a value the worker supplies per joiner through
// SecretID metadata, which AppRole copies onto the login's entity alias:
//
//	path "secret/data/workloads/{{identity.entity.aliases.<approle accessor>.metadata.joinery_slot_0}}" {
//	  capabilities = ["read"]
//	}
//
// With joinery_slot_0 = "deploy-bot/production/*" the workload's token holds
// exactly the grant the plan computed. The worker chooses slot values, so
// what it can give a workload is bounded by the prefix: "anything below
// secret/data/workloads/ with read" — the same bound the joiner policy puts
// on what it may grant, and never a path outside it or a capability the
// kind does not have.

// WorkloadSlotKey is the SecretID metadata key that fills slot i of a
// workload policy.
func WorkloadSlotKey(i int) string { return "joinery_slot_" + strconv.Itoa(i) }

// WorkloadPolicyPrefix starts the name of every pre-created workload policy;
// the rest is the non-human kind: joinery-workload-<kind>.
const WorkloadPolicyPrefix = "joinery-workload-"

// DefaultWorkloadCataloguePath is the logical KV path (under KVMount) where
// the bootstrap records which workload policies it installed, so the worker
// learns the set from Vault rather than from its own, possibly newer, policy
// file.
const DefaultWorkloadCataloguePath = "joinery/workload-policies"

// TypeNoWorkloadPolicy: a workload's grants match none of the pre-created
// workload policies — permanent, because only an operator re-running the
// Vault bootstrap for the current joiner policy can fix it, and the worker
// must not widen anything in the meantime.
const TypeNoWorkloadPolicy = "VaultNoWorkloadPolicy"

// GrantTemplate is one Vault path a workload may use, with its capabilities.
// As a template (WorkloadCatalogueFor) its path may hold {placeholders}; as
// a concrete grant (WorkloadRequest) it is the joiner's expanded path.
type GrantTemplate struct {
	Path         string   `json:"path"`
	Capabilities []string `json:"capabilities"`
}

// WorkloadSlot is one path stanza of a workload policy.
type WorkloadSlot struct {
	// Prefix is the literal path up to the first placeholder, or the whole
	// path when Variable is false.
	Prefix string `json:"prefix"`
	// Variable says the rest of the path comes from SecretID metadata
	// (WorkloadSlotKey of the slot's index).
	Variable bool `json:"variable"`
	// Capabilities are granted on the path, sorted.
	Capabilities []string `json:"capabilities"`
}

// WorkloadPolicy is one pre-created, templated ACL policy for a kind.
type WorkloadPolicy struct {
	Name  string         `json:"name"`
	Kind  string         `json:"kind"`
	Slots []WorkloadSlot `json:"slots"`
}

// WorkloadCatalogue is the whole set of workload policies, sorted by name.
type WorkloadCatalogue struct {
	Policies []WorkloadPolicy `json:"policies"`
}

var (
	workloadCaps = []string{"create", "read", "update", "patch", "delete", "list"}
	// Never for workloads, whatever the joiner policy says (it refuses them
	// too; repeated here because the catalogue is the Vault-side boundary).
	workloadForbidden = []string{"sys/", "auth/", "identity/", "cubbyhole/"}
	grantPathRE       = regexp.MustCompile(`^[A-Za-z0-9_.+*/-]+$`)
)

// WorkloadCatalogueFor renders the workload policies for the joiner policy's
// non-human kinds: kind name → the kind's grant templates, in policy order.
// It refuses templates whose literal prefix is too short to bound what the
// worker can hand out (at least three path segments before the first
// placeholder, e.g. "secret/data/workloads/"), a placeholder in the mount,
// and capabilities beyond create/read/update/patch/delete/list.
func WorkloadCatalogueFor(kinds map[string][]GrantTemplate) (WorkloadCatalogue, error) {
	var cat WorkloadCatalogue
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, kind := range names {
		if err := checkSegment(kind); err != nil {
			return WorkloadCatalogue{}, fmt.Errorf("kind %q: %w", kind, err)
		}
		tmpls := kinds[kind]
		if len(tmpls) == 0 {
			continue
		}
		p := WorkloadPolicy{Name: WorkloadPolicyPrefix + kind, Kind: kind}
		for i, t := range tmpls {
			slot, err := slotFor(t)
			if err != nil {
				return WorkloadCatalogue{}, fmt.Errorf("kind %s, path %d (%q): %w", kind, i, t.Path, err)
			}
			p.Slots = append(p.Slots, slot)
		}
		cat.Policies = append(cat.Policies, p)
	}
	return cat, nil
}

func slotFor(t GrantTemplate) (WorkloadSlot, error) {
	caps, err := checkCaps(t.Capabilities)
	if err != nil {
		return WorkloadSlot{}, err
	}
	prefix, variable := t.Path, false
	if i := strings.IndexAny(t.Path, "{}"); i >= 0 {
		prefix, variable = t.Path[:i], true
	}
	if !grantPathRE.MatchString(prefix) || strings.Contains(prefix, "..") {
		return WorkloadSlot{}, fmt.Errorf("literal prefix %q: only letters, digits, '/', '_', '-', '.', '+' and a final '*'", prefix)
	}
	if i := strings.Index(prefix, "*"); i >= 0 && (variable || i != len(prefix)-1) {
		return WorkloadSlot{}, fmt.Errorf("'*' is only allowed at the end of a path")
	}
	for _, f := range workloadForbidden {
		if strings.HasPrefix(prefix, f) {
			return WorkloadSlot{}, fmt.Errorf("workloads may not be granted %s paths", strings.TrimSuffix(f, "/"))
		}
	}
	if reachesJoineryTree(prefix, variable || strings.HasSuffix(prefix, "*")) {
		return WorkloadSlot{}, fmt.Errorf("workloads may not be granted Joinery's own KV tree (%s/...: credentials, handover ledgers and indexes, the catalogue)", joineryKVTop)
	}
	if variable {
		// The worker fills everything after the prefix, so the prefix is
		// the real boundary: mount plus two segments (or the start of one).
		parts := strings.Split(prefix, "/")
		if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return WorkloadSlot{}, fmt.Errorf("a placeholder needs at least three literal path segments before it (e.g. secret/data/workloads/{firstName}); %q would let the worker grant a whole mount", prefix)
		}
	}
	return WorkloadSlot{Prefix: prefix, Variable: variable, Capabilities: caps}, nil
}

func checkCaps(caps []string) ([]string, error) {
	if len(caps) == 0 {
		return nil, fmt.Errorf("no capabilities")
	}
	out := slices.Clone(caps)
	for _, c := range out {
		if !slices.Contains(workloadCaps, c) {
			return nil, fmt.Errorf("capability %q: want one of %s", c, strings.Join(workloadCaps, ", "))
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// Names lists the catalogue's policy names, sorted.
func (c WorkloadCatalogue) Names() []string {
	out := make([]string, len(c.Policies))
	for i, p := range c.Policies {
		out[i] = p.Name
	}
	sort.Strings(out)
	return out
}

// HCL renders the policy as a Vault ACL template. approleAccessor is the
// mount accessor of the AppRole auth method workloads log in with (e.g.
// auth_approle_1a2b3c4d), whose entity-alias metadata fills the slots.
func (p WorkloadPolicy) HCL(approleAccessor string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Joinery workload policy for kind %q, installed by the Vault bootstrap from the joiner policy.\n", p.Kind)
	b.WriteString("# Each variable path is a fixed prefix plus a value from the workload's SecretID metadata;\n")
	b.WriteString("# a slot without a value resolves to nothing and grants nothing.\n")
	for i, s := range p.Slots {
		path := s.Prefix
		if s.Variable {
			path += "{{identity.entity.aliases." + approleAccessor + ".metadata." + WorkloadSlotKey(i) + "}}"
		}
		caps := make([]string, len(s.Capabilities))
		for j, c := range s.Capabilities {
			caps[j] = strconv.Quote(c)
		}
		fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", path, strings.Join(caps, ", "))
	}
	return b.String()
}

// bind finds the slot values that make p grant exactly grants (same order,
// same capabilities), or reports why it cannot.
func (p WorkloadPolicy) bind(grants []GrantTemplate) (map[string]string, error) {
	if len(grants) != len(p.Slots) {
		return nil, fmt.Errorf("%s has %d paths, the workload %d", p.Name, len(p.Slots), len(grants))
	}
	md := map[string]string{}
	for i, g := range grants {
		s := p.Slots[i]
		caps, err := checkCaps(g.Capabilities)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", g.Path, err)
		}
		if !slices.Equal(caps, s.Capabilities) {
			return nil, fmt.Errorf("path %q: capabilities %v, %s grants %v", g.Path, caps, p.Name, s.Capabilities)
		}
		if !s.Variable {
			if g.Path != s.Prefix {
				return nil, fmt.Errorf("path %q is not %s's %q", g.Path, p.Name, s.Prefix)
			}
			continue
		}
		rest, ok := strings.CutPrefix(g.Path, s.Prefix)
		if !ok || rest == "" {
			return nil, fmt.Errorf("path %q is not below %s's prefix %q", g.Path, p.Name, s.Prefix)
		}
		// The value lands inside an ACL path: keep it to path characters so
		// the honest worker never asks for more than the plan says (a
		// compromised one is bounded by the prefix anyway).
		if !grantPathRE.MatchString(rest) || strings.Contains(rest, "..") || strings.Contains(rest, "//") ||
			(strings.Contains(rest, "*") && strings.Index(rest, "*") != len(rest)-1) {
			return nil, fmt.Errorf("path %q: %q is not a plain path below %q", g.Path, rest, s.Prefix)
		}
		md[WorkloadSlotKey(i)] = rest
	}
	return md, nil
}

// BindWorkload finds the policy of cat (of kind, when set) that yields
// exactly grants and the SecretID metadata that makes it so, as IssueWorkload
// does against the installed catalogue. It lets the bootstrap and tests
// check a joiner policy against a catalogue without Vault.
func BindWorkload(cat WorkloadCatalogue, kind string, grants []GrantTemplate) (metadata map[string]string, policy string, err error) {
	var why []string
	for _, p := range cat.Policies {
		if kind != "" && p.Kind != kind {
			continue
		}
		md, err := p.bind(grants)
		if err == nil {
			return md, p.Name, nil
		}
		why = append(why, err.Error())
	}
	return nil, "", fmt.Errorf("no workload policy yields these grants: %s", strings.Join(why, "; "))
}

// WorkloadRequest asks for a non-human joiner's AppRole.
type WorkloadRequest struct {
	// Role is the AppRole role name (joinery-nhi-…, the only names the
	// worker's policy lets it manage).
	Role string
	// Kind, when set, restricts matching to that kind's workload policy.
	Kind string
	// Grants are the plan's expanded grants, in policy order.
	Grants []GrantTemplate
	// Options are the role's limits; TokenPolicies must be empty (the
	// catalogue decides the policy).
	Options AppRoleOptions
	// WrapTTL is the lifetime of the wrapped SecretID handed over.
	WrapTTL time.Duration
}

// IssuedWorkload references what IssueWorkload created. It holds no secret.
type IssuedWorkload struct {
	RoleID string
	// PolicyName is the pre-created workload policy the role's tokens get.
	PolicyName string
	// EffectivePolicy is the policy as it applies to this workload (the
	// template with its slots filled), for the audit record.
	EffectivePolicy string
	// Handover describes the wrapped SecretID (Path: the role's secret-id
	// API path).
	Handover Handover
}

// IssueWorkload creates (or updates) the workload's AppRole bound to the
// pre-created workload policy whose template yields exactly req.Grants,
// mints a SecretID carrying the slot values, response-wrapped for
// req.WrapTTL, and hands the wrapping token to deliver.
//
// Grants that no installed policy yields fail with TypeNoWorkloadPolicy
// (permanent) before anything is written. If delivery fails, the wrapping
// token is consumed here and its SecretID destroyed, so nothing undelivered
// stays redeemable; the error is returned with its classification.
//
// Every SecretID handed out is recorded (wrapping token, wrapping accessor,
// SecretID accessor) in the role's ledger (WorkloadLedgerPath) before it is
// delivered. A retry — the earlier attempt delivered, then the worker died
// before Temporal recorded the result — first ends every handover still
// live there: it redeems the wrapping token and destroys the SecretID, so the
// only SecretID of the role is the one this call hands over. A SecretID
// minted but never recorded (the worker died in between) was never
// delivered: it sits in the cubbyhole of a wrapping token that existed only
// in the dead worker's memory, expires with it, and dies with the role.
func (c *Client) IssueWorkload(ctx context.Context, req WorkloadRequest, deliver func(context.Context, string) error) (IssuedWorkload, error) {
	const op = "issue-workload"
	if err := checkSegment(req.Role); err != nil {
		return IssuedWorkload{}, invalid(op, "invalid role name: "+err.Error())
	}
	if !strings.HasPrefix(req.Role, WorkloadRolePrefix) {
		return IssuedWorkload{}, invalid(op, "workload role "+req.Role+" must start with "+WorkloadRolePrefix+", the only roles the worker may manage")
	}
	if len(req.Options.TokenPolicies) > 0 {
		return IssuedWorkload{}, invalid(op, "token policies come from the workload catalogue, not the request")
	}
	if err := checkWrapTTL(req.WrapTTL); err != nil {
		return IssuedWorkload{}, invalid(op, err.Error())
	}
	if deliver == nil {
		return IssuedWorkload{}, invalid(op, "deliver is required")
	}
	pol, md, err := c.matchWorkload(ctx, req)
	if err != nil {
		return IssuedWorkload{}, err
	}
	opts := req.Options
	opts.TokenPolicies = []string{pol.Name}
	roleID, err := c.CreateAppRole(ctx, req.Role, opts)
	if err != nil {
		return IssuedWorkload{}, err
	}
	ledger := c.WorkloadLedgerPath(req.Role)
	// SecretIDs an earlier attempt minted and may have delivered: this call
	// hands over the one that counts, so they end first.
	if _, err := c.endHandovers(ctx, ledger, req.Role); err != nil {
		return IssuedWorkload{}, err
	}
	token, h, err := c.wrappedSecretID(ctx, req.Role, req.WrapTTL, md)
	if err != nil {
		return IssuedWorkload{}, err
	}
	rec := HandoverRecord{WrapAccessor: h.WrapAccessor, SecretIDAccessor: h.SecretIDAccessor,
		IssuedAt: h.ExpiresAt.Add(-h.WrapTTL), ExpiresAt: h.ExpiresAt}
	if err := c.recordHandover(ctx, ledger, token, rec); err != nil {
		c.discardWrappedSecretID(ctx, req.Role, token)
		return IssuedWorkload{}, err
	}
	if err := deliver(ctx, token); err != nil {
		c.discardWrappedSecretID(ctx, req.Role, token)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		// If this fails the entry stays live and the next attempt (or the
		// revocation) ends it: destroying a destroyed SecretID succeeds.
		_ = c.markEnded(cctx, ledger, h.WrapAccessor)
		return IssuedWorkload{}, withheld(op, "delivering the wrapped SecretID", err, token)
	}
	if recs, err := c.Handovers(ctx, ledger); err == nil {
		h.Accessors = accessorsOf(recs)
	} else {
		h.Accessors = []string{h.WrapAccessor}
	}
	return IssuedWorkload{RoleID: roleID, PolicyName: pol.Name, EffectivePolicy: effectiveHCL(pol, md), Handover: h}, nil
}

// effectiveHCL renders the policy with its slots filled: what the
// workload's token can actually do.
func effectiveHCL(p WorkloadPolicy, md map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s for this workload\n", p.Name)
	for i, s := range p.Slots {
		path := s.Prefix + md[WorkloadSlotKey(i)]
		caps := make([]string, len(s.Capabilities))
		for j, c := range s.Capabilities {
			caps[j] = strconv.Quote(c)
		}
		fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", path, strings.Join(caps, ", "))
	}
	return b.String()
}

// matchWorkload picks the catalogue policy for req. The catalogue is read
// from Vault on first use and again on a miss, so a bootstrap re-run for a
// new joiner policy is picked up without restarting the worker.
func (c *Client) matchWorkload(ctx context.Context, req WorkloadRequest) (WorkloadPolicy, map[string]string, error) {
	const op = "issue-workload"
	try := func(cat WorkloadCatalogue) (WorkloadPolicy, map[string]string, []string) {
		var why []string
		for _, p := range cat.Policies {
			if req.Kind != "" && p.Kind != req.Kind {
				continue
			}
			md, err := p.bind(req.Grants)
			if err == nil {
				return p, md, nil
			}
			why = append(why, err.Error())
		}
		return WorkloadPolicy{}, nil, why
	}
	c.catMu.Lock()
	cat, loaded := c.catalogue, c.catLoaded
	c.catMu.Unlock()
	if loaded {
		if p, md, _ := try(cat); p.Name != "" {
			return p, md, nil
		}
	}
	cat, err := c.ReadWorkloadCatalogue(ctx)
	if err != nil {
		return WorkloadPolicy{}, nil, err
	}
	c.catMu.Lock()
	c.catalogue, c.catLoaded = cat, true
	c.catMu.Unlock()
	p, md, why := try(cat)
	if p.Name != "" {
		return p, md, nil
	}
	msg := fmt.Sprintf("the workload's grants match no pre-created workload policy (installed: %s)", strings.Join(cat.Names(), ", "))
	if len(cat.Policies) == 0 {
		msg = "no workload policies are installed in Vault"
	}
	if len(why) > 0 {
		msg += ": " + strings.Join(why, "; ")
	}
	msg += "; an operator must re-run the Vault bootstrap for the current joiner policy"
	return WorkloadPolicy{}, nil, connectors.Permanent(system, op, TypeNoWorkloadPolicy, msg, nil)
}

// ReadWorkloadCatalogue reads the catalogue the bootstrap recorded at
// WorkloadCataloguePath. A missing record is an empty catalogue.
func (c *Client) ReadWorkloadCatalogue(ctx context.Context) (WorkloadCatalogue, error) {
	const op = "workload-catalogue"
	var cat WorkloadCatalogue
	apiPath := c.kvPath("data", c.cfg.WorkloadCataloguePath)
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.KVv2(c.cfg.KVMount).Get(ctx, c.cfg.WorkloadCataloguePath)
		if statusCode(err) == http.StatusNotFound || errors.Is(err, vault.ErrSecretNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		raw, _ := s.Data["catalogue"].(string)
		if err := json.Unmarshal([]byte(raw), &cat); err != nil {
			return connectors.Permanent(system, op, TypeRejected, "the workload catalogue at "+apiPath+" is not valid JSON", err)
		}
		return nil
	})
	return cat, err
}

// InstallWorkloadPolicies writes every catalogue policy as an ACL template
// bound to the AppRole mount's accessor and records the catalogue for the
// worker. It needs an operator token (sys/auth read, sys/policies/acl
// write); the bootstrap runs it, never the worker. Policies of kinds that
// left the joiner policy are left alone: roles may still use them, and an
// operator deletes them once those workloads are gone.
func (c *Client) InstallWorkloadPolicies(ctx context.Context, cat WorkloadCatalogue) error {
	const op = "install-workload-policies"
	acc, err := c.AppRoleAccessor(ctx)
	if err != nil {
		return err
	}
	for _, p := range cat.Policies {
		if !strings.HasPrefix(p.Name, WorkloadPolicyPrefix) {
			return invalid(op, "workload policy "+p.Name+" lacks the "+WorkloadPolicyPrefix+" prefix")
		}
		if err := c.WritePolicy(ctx, p.Name, p.HCL(acc)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(cat)
	if err != nil {
		return invalid(op, err.Error())
	}
	_, err = c.Put(ctx, c.cfg.WorkloadCataloguePath, map[string]any{"catalogue": string(data)}, nil)
	return err
}

// AppRoleAccessor returns the mount accessor of the AppRole auth method at
// AppRoleMount (needs read on sys/auth).
func (c *Client) AppRoleAccessor(ctx context.Context) (string, error) {
	const op = "approle-accessor"
	var acc string
	err := c.call(ctx, op, "sys/auth", func(ctx context.Context, vc *vault.Client) error {
		auths, err := vc.Sys().ListAuthWithContext(ctx)
		if err != nil {
			return err
		}
		m, ok := auths[c.cfg.AppRoleMount+"/"]
		if !ok || m.Accessor == "" {
			return connectors.Permanent(system, op, TypeNotFound, "no auth method mounted at auth/"+c.cfg.AppRoleMount, nil)
		}
		acc = m.Accessor
		return nil
	})
	return acc, err
}

// wrappedSecretID mints a SecretID for role carrying metadata, wrapped for ttl.
func (c *Client) wrappedSecretID(ctx context.Context, role string, ttl time.Duration, md map[string]string) (string, Handover, error) {
	const op = "approle-secret-id"
	body := map[string]any{}
	if len(md) > 0 {
		raw, err := json.Marshal(md)
		if err != nil {
			return "", Handover{}, invalid(op, err.Error())
		}
		// AppRole takes SecretID metadata as a JSON-encoded string.
		body["metadata"] = string(raw)
	}
	apiPath := c.rolePath(role) + "/secret-id"
	req := vault.NewLogicalWriteRequest(apiPath, body, http.Header{"X-Vault-Wrap-TTL": {wrapTTL(ttl)}})
	var sec *vault.Secret
	// A 403 retry after re-login cannot mint two SecretIDs: a 403 means the
	// first request generated nothing.
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		var err error
		sec, err = vc.Logical().WriteWithRequest(ctx, req)
		return err
	})
	if err != nil {
		return "", Handover{}, err
	}
	return handover(op, apiPath, 0, apiPath, sec)
}

// discardWrappedSecretID ends an undelivered wrapped SecretID without the
// power to revoke arbitrary tokens: the wrapping token is redeemed here
// (authenticated by itself, so the worker's policy needs nothing for it),
// which makes it useless to anyone else, and the SecretID inside is then
// destroyed through its accessor on the role (a path scoped to Joinery's
// roles). Best effort on a detached context: if it fails, the token still
// expires at its TTL and the role's deletion (the compensation) kills the
// SecretID.
func (c *Client) discardWrappedSecretID(ctx context.Context, role, token string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	sec, err := c.unwrapOwn(cctx, token)
	if err != nil || sec == nil {
		return
	}
	acc, _ := sec.Data["secret_id_accessor"].(string)
	if acc == "" {
		return
	}
	apiPath := c.rolePath(role) + "/secret-id-accessor/destroy"
	_ = c.call(cctx, "approle-secret-id-destroy", apiPath, func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Logical().WriteWithContext(ctx, apiPath, map[string]any{"secret_id_accessor": acc})
		return err
	})
}

// unwrapOwn redeems a wrapping token this client just created, with a
// token-less client so the wrapping token authenticates itself. The result
// never leaves this package.
func (c *Client) unwrapOwn(ctx context.Context, token string) (*vault.Secret, error) {
	vc, err := newAPIClient(c.cfg)
	if err != nil {
		return nil, err
	}
	return vc.Logical().UnwrapWithContext(ctx, token)
}

// RevokeWorkload ends a workload: every token it holds loses its
// permissions at once, then the role (with every SecretID) is deleted. An
// absent role counts as revoked.
//
// Deleting an AppRole role does not revoke the tokens it issued, and the
// worker has no token revocation (it would reach every token in Vault). But
// a workload policy is a template over the role's entity-alias metadata,
// which AppRole rewrites at every login. So the worker first logs in as the
// role once with a SecretID that carries no slot values: the alias loses
// them, every template path of every token of that workload resolves to
// nothing, and the token's own policy grants nothing from then on. The
// login's token is revoked by itself (revoke-self), and the role's CIDR
// bindings are lifted for that one login, which may come from the worker's
// address rather than the workload's.
func (c *Client) RevokeWorkload(ctx context.Context, role string) error {
	const op = "revoke-workload"
	if err := checkSegment(role); err != nil {
		return invalid(op, "invalid role name: "+err.Error())
	}
	rolePath := c.rolePath(role)
	var roleID string
	err := c.call(ctx, op, rolePath+"/role-id", func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.Logical().ReadWithContext(ctx, rolePath+"/role-id")
		if err != nil {
			return ignoreNotFound(nil, err)
		}
		if s != nil {
			roleID, _ = s.Data["role_id"].(string)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if roleID != "" {
		if err := c.disarmWorkload(ctx, op, rolePath, roleID); err != nil {
			return err
		}
	}
	if err := c.DeleteAppRole(ctx, role); err != nil {
		return err
	}
	// Every SecretID died with the role; redeeming the recorded wrapping
	// tokens ends the handovers too, so none unwraps any more, and the
	// ledger (which holds them) goes.
	ledger := c.WorkloadLedgerPath(role)
	if _, err := c.endHandovers(ctx, ledger, ""); err != nil {
		return err
	}
	if err := c.Destroy(ctx, ledger); err != nil {
		return err
	}
	// The index after the ledger, as in RevokeInitialCredential.
	return c.Destroy(ctx, HandoverIndexPath(ledger))
}

// disarmWorkload logs in as the role with slot-less SecretID metadata, so the
// workload's entity alias (and with it every token's templated policy) has
// no slot values left.
func (c *Client) disarmWorkload(ctx context.Context, op, rolePath, roleID string) error {
	err := c.call(ctx, op, rolePath, func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Logical().WriteWithContext(ctx, rolePath, map[string]any{
			"secret_id_bound_cidrs": []string{}, "token_bound_cidrs": []string{},
		})
		return err
	})
	if err != nil {
		return err
	}
	var secretID string
	sidPath := rolePath + "/secret-id"
	err = c.call(ctx, op, sidPath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.Logical().WriteWithContext(ctx, sidPath, map[string]any{"metadata": `{"joinery_revoked":"true"}`})
		if err != nil {
			return err
		}
		if s != nil {
			secretID, _ = s.Data["secret_id"].(string)
		}
		if secretID == "" {
			return connectors.Transient(system, op, TypeUnavailable, "Vault returned no SecretID from "+sidPath, nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	lc, err := newAPIClient(c.cfg)
	if err != nil {
		return invalid(op, err.Error())
	}
	loginPath := "auth/" + c.cfg.AppRoleMount + "/login"
	ctx2, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := lc.Logical().WriteWithContext(ctx2, loginPath, map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		return classify(op, loginPath, err)
	}
	if s != nil && s.Auth != nil && s.Auth.ClientToken != "" {
		lc.SetToken(s.Auth.ClientToken)
		// Best effort: the token holds nothing any more, and it dies with
		// its TTL anyway.
		_ = lc.Auth().Token().RevokeSelfWithContext(ctx2, "")
	}
	return nil
}

// joineryKVTop is the first segment of Joinery's own tree in a KV mount
// (DefaultPathPrefix, DefaultWorkloadCataloguePath): the initial
// credentials, their handover ledgers (which hold live wrapping tokens) and
// indexes (which the sweeper trusts), and the workload catalogue.
const joineryKVTop = "joinery"

// reachesJoineryTree reports whether a grant's literal prefix could reach
// Joinery's own KV tree in any mount: <mount>/<api>/joinery/..., through a
// '+' segment, or, when the prefix is open (a placeholder or a final '*'
// follows), through a first segment Joinery's could continue. A workload
// granted it could read ledgers, or write an index and so hide an orphan
// from the sweeper or expose a handover to it.
func reachesJoineryTree(prefix string, open bool) bool {
	parts := strings.SplitN(prefix, "/", 3)
	if len(parts) < 3 {
		// "secret/*", "secret/d*": the whole mount, Joinery's tree too.
		return open
	}
	first, _, more := strings.Cut(parts[2], "/")
	switch {
	case first == "+" || first == joineryKVTop:
		return true
	case !more && open:
		return strings.HasPrefix(joineryKVTop, strings.TrimSuffix(first, "*"))
	}
	return false
}
