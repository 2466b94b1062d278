package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

// auditorCatchesResidue plants, by hand on the private stack's servers,
// everything a broken joiner could leave — an entry with Joinery's marker
// and a duplicate, a group membership, a Vault secret and a live wrapping
// token for it, a write-back in the HRIS — and requires the auditor to
// report each one; then removes them and requires a clean audit. A
// checker that cannot fail would make every "nothing lost" row worthless.
func auditorCatchesResidue(su *Suite) {
	t := su.t
	ctx := context.Background()
	tok := su.name("plant")
	id, err := su.D.Hire(ctx, "Rel", tok, 1)
	require.NoError(t, err)
	uid := strings.ToLower("rel." + tok)
	people := "ou=people," + su.S.EP.LDAPBaseDN
	dn, dup := "uid="+uid+","+people, "uid="+uid+"b,"+people
	group := "cn=all-staff,ou=groups," + su.S.EP.LDAPBaseDN

	conn, err := ldap.DialURL(su.S.EP.LDAPURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(su.S.EP.LDAPBindDN, su.S.EP.LDAPBindPassword))
	for _, d := range []string{dn, dup} {
		r := ldap.NewAddRequest(d, nil)
		r.Attribute("objectClass", []string{"inetOrgPerson", "joineryManaged"})
		r.Attribute("cn", []string{"Rel " + tok})
		r.Attribute("sn", []string{tok})
		r.Attribute("employeeNumber", []string{id})
		r.Attribute("joineryJoiner", []string{"joiner-" + id})
		require.NoError(t, conn.Add(r), "plant %s", d)
	}
	mod := ldap.NewModifyRequest(group, nil)
	mod.Add("member", []string{dn})
	require.NoError(t, conn.Modify(mod))

	a := su.A
	path := fmt.Sprintf("secret/data/%s/%s/initial-credential", a.PathPrefix, id)
	_, err = a.vaultWrite(ctx, path, map[string]any{"data": map[string]any{"password": "planted"}})
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.VaultAddr+"/v1/"+path, nil)
	req.Header.Set("X-Vault-Token", a.VaultToken)
	req.Header.Set("X-Vault-Wrap-TTL", "10m")
	var wrapped struct {
		WrapInfo struct {
			Accessor string `json:"accessor"`
		} `json:"wrap_info"`
	}
	require.NoError(t, a.do(req, &wrapped))
	require.NotEmpty(t, wrapped.WrapInfo.Accessor)
	hrisSet := func(email, user string) {
		body, _ := json.Marshal(map[string]string{"workEmail": email, "customUsername": user})
		u := fmt.Sprintf("%s/api/gateway.php/%s/v1/employees/%s", a.HRISURL, a.HRISCompany, id)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
		req.SetBasicAuth(a.HRISAPIKey, "x")
		req.Header.Set("Content-Type", "application/json")
		require.NoError(t, a.do(req, nil))
	}
	hrisSet(uid+"@joinery.test", uid)

	rep, err := a.Audit(ctx, map[string]Expect{id: Gone})
	require.NoError(t, err)
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"ldap: entry left after rollback", "ldap: member of all-staff after rollback",
		"vault: secret initial-credential has 1 readable version(s) after rollback", "vault: live wrapping token",
		"hris: write-back left after rollback"} {
		require.Contains(t, all, want, "the auditor must report %q", want)
	}
	rep, err = a.Audit(ctx, map[string]Expect{id: Live})
	require.NoError(t, err)
	require.Contains(t, fmt.Sprint(rep.Findings), "2 entries (duplicates)")
	rep, err = a.Audit(ctx, map[string]Expect{id: Disabled})
	require.NoError(t, err)
	require.Contains(t, fmt.Sprint(rep.Findings), "member of all-staff after revocation")

	// Remove the plants; the same audit is then clean.
	mod = ldap.NewModifyRequest(group, nil)
	mod.Delete("member", []string{dn})
	require.NoError(t, conn.Modify(mod))
	for _, d := range []string{dn, dup} {
		require.NoError(t, conn.Del(ldap.NewDelRequest(d, nil)))
	}
	_, err = a.vaultRequest(ctx, http.MethodDelete, fmt.Sprintf("secret/metadata/%s/%s/initial-credential", a.PathPrefix, id), nil)
	require.NoError(t, err)
	_, err = a.vaultWrite(ctx, "auth/token/revoke-accessor", map[string]any{"accessor": wrapped.WrapInfo.Accessor})
	require.NoError(t, err)
	hrisSet("", "")
	rep, err = a.Audit(ctx, map[string]Expect{id: Gone})
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "after the plants are removed the audit is clean")
	su.tab.mu.Lock()
	su.tab.rows = append(su.tab.rows, Row{Fault: "auditor self-test: residue planted by hand on LDAP, Vault, HRIS", Runs: 1,
		Survived: fmt.Sprintf("%d findings reported", len(got)), Lost: "nothing (every plant reported, clean after removal)"})
	su.tab.mu.Unlock()
}
