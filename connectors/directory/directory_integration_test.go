package directory

// Integration tests against a real slapd: a private one for this test binary
// (stack.PrivateSlapd, with the dev stack's generated slapd.conf, schema,
// access rules and seed), so they neither need nor disturb the shared dev
// stack. The connector binds as the worker's service account, as the worker
// does; assertions about what the directory holds bind as the rootdn. Every
// test uses names and employee ids with a random suffix and deletes what it
// creates, so tests do not interfere and the seeded directory stays as it was.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/internal/stack"
)

const (
	seedBase   = "dc=joinery,dc=test"
	seedPeople = "ou=people," + seedBase
)

// slapdOnce is the private slapd of this test binary, started by the first
// test that needs it and stopped by TestMain.
var slapdOnce = sync.OnceValues(func() (stack.Endpoints, error) {
	repo, err := stack.FindRepoDir()
	if err != nil {
		return stack.Endpoints{}, err
	}
	cfg := stack.DefaultConfig(repo)
	if cfg.StateDir, err = os.MkdirTemp("", "joinery-directory-it-"); err != nil {
		return stack.Endpoints{}, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return stack.Endpoints{}, err
	}
	cfg.LDAPPort = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, err := stack.PrivateSlapd(ctx, cfg)
	if err != nil {
		_ = os.RemoveAll(cfg.StateDir)
		return stack.Endpoints{}, err
	}
	stopSlapd = func() { stop(); _ = os.RemoveAll(cfg.StateDir) }
	return cfg.Endpoints(), nil
})

// stopSlapd ends the private slapd, if a test started it.
var stopSlapd = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	stopSlapd()
	os.Exit(code)
}

// integrationSlapd returns the private slapd's endpoints; LDAPBindDN is its
// rootdn, for assertions only.
func integrationSlapd(t *testing.T) stack.Endpoints {
	t.Helper()
	ep, err := slapdOnce()
	if err != nil {
		t.Fatalf("a private slapd is needed and could not start: %v", err)
	}
	return ep
}

// integrationClient is a Client bound as the worker's service account.
func integrationClient(t *testing.T, mutate ...func(*Config)) (*Client, stack.Endpoints) {
	t.Helper()
	ep := integrationSlapd(t)
	cfg := Config{URL: ep.LDAPURL, BindDN: stack.LDAPServiceDN, BindPassword: stack.LDAPServicePassword, BaseDN: ep.LDAPBaseDN}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c, ep
}

// tag returns a short random string that makes this run's names unique.
func tag(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// employeeID returns a random numeric employee id (numeric so that POSIX
// profiles can derive a uidNumber from it).
func employeeID(t *testing.T) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(900_000_000))
	require.NoError(t, err)
	return fmt.Sprint(100_000_000 + n.Int64())
}

func person(t *testing.T, given, surname string) Person {
	t.Helper()
	return Person{
		EmployeeID: employeeID(t), Owner: "joiner-it-" + tag(t), OwnerRun: "run-" + tag(t),
		GivenName: given, Surname: surname, DisplayName: given + " " + surname,
		Mail: strings.ToLower(given+"."+surname) + "@joinery.test", Title: "Tester", Department: "QA",
		ManagerDN: "uid=grace.hopper," + seedPeople,
	}
}

// robot is a non-human joiner.
func robot(t *testing.T, name string) Person {
	t.Helper()
	return Person{EmployeeID: employeeID(t), Owner: "nhi-it-" + tag(t), OwnerRun: "run-" + tag(t), DisplayName: name, NonHuman: true}
}

// deleteLater removes dn when the test ends, with the owner its marker names
// (Delete of a missing entry is success, so tests may delete it themselves
// too).
func deleteLater(t *testing.T, c *Client, dn string) {
	t.Helper()
	t.Cleanup(func() {
		owner := markerOf(t, dn)
		if owner == "" {
			return // already gone
		}
		require.NoError(t, c.Delete(context.Background(), dn, owner))
	})
}

// rootConn is a connection bound as the rootdn, for assertions about what
// the directory holds (the service account cannot see everything).
func rootConn(t *testing.T) *ldap.Conn {
	t.Helper()
	ep := integrationSlapd(t)
	conn, err := ldap.DialURL(ep.LDAPURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.Bind(ep.LDAPBindDN, ep.LDAPBindPassword))
	return conn
}

// rawEntry reads dn as the rootdn with every user and operational attribute
// (password hash included), or nil when it does not exist.
func rawEntry(t *testing.T, dn string) *ldap.Entry {
	t.Helper()
	res, err := rootConn(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"*", "+"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	return res.Entries[0]
}

// markerOf returns the joineryJoiner of dn ("" when dn does not exist).
func markerOf(t *testing.T, dn string) string {
	t.Helper()
	e := rawEntry(t, dn)
	if e == nil {
		return ""
	}
	return e.GetAttributeValue(JoinerAttribute)
}

// bind tries a simple bind as dn on a connection of its own.
func bind(t *testing.T, ep stack.Endpoints, dn, password string) error {
	t.Helper()
	conn, err := ldap.DialURL(ep.LDAPURL)
	require.NoError(t, err)
	defer conn.Close()
	return conn.Bind(dn, password)
}

// holderCount counts the entries anywhere under the base that hold uid.
func holderCount(t *testing.T, ep stack.Endpoints, uid string) int {
	t.Helper()
	conn, err := ldap.DialURL(ep.LDAPURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(ep.LDAPBindDN, ep.LDAPBindPassword))
	res, err := conn.Search(ldap.NewSearchRequest(ep.LDAPBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(uid="+ldap.EscapeFilter(uid)+")", []string{"1.1"}, nil))
	require.NoError(t, err)
	return len(res.Entries)
}

func TestIntegrationTakenSeededNames(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	free := "free-" + tag(t)
	weird := `we(ird*)\` + tag(t)
	got, err := c.Taken(ctx, []string{"john.smith", "jsmith", "JOHN.SMITH", free, weird, "*"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{
		"john.smith": true, "jsmith": true, "JOHN.SMITH": true, free: false, weird: false,
		"*": false, // escaped: not a wildcard matching everyone
	}, got)

	// A batch of 50 names is one search with one filter.
	names := []string{"grace.hopper", "ada.lovelace"}
	for i := range 48 {
		names = append(names, fmt.Sprintf("%s-%02d", free, i))
	}
	got, err = c.Taken(ctx, names)
	require.NoError(t, err)
	require.Len(t, got, 50)
	for _, n := range names {
		require.Equal(t, n == "grace.hopper" || n == "ada.lovelace", got[n], n)
	}
}

func TestIntegrationClaimFindDelete(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	p := person(t, "Integration", "Tester")
	username := "it-" + tag(t)

	acct, err := c.Claim(ctx, username, p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	require.Equal(t, Account{Username: username, DN: "uid=" + username + "," + seedPeople, Existing: false}, acct)

	e, err := c.FindByEmployeeID(ctx, p.EmployeeID, false)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.True(t, sameDN(acct.DN, e.DN))
	require.Equal(t, username, e.Username)
	require.Equal(t, p.EmployeeID, e.EmployeeID)
	require.Equal(t, []string{p.Mail}, e.Attributes["mail"])
	require.Equal(t, []string{"QA"}, e.Attributes["departmentNumber"])
	require.Equal(t, []string{"uid=grace.hopper," + seedPeople}, e.Attributes["manager"])
	require.NotContains(t, e.Attributes, "userPassword")

	// Human entries live under people only.
	none, err := c.FindByEmployeeID(ctx, p.EmployeeID, true)
	require.NoError(t, err)
	require.Nil(t, none)

	taken, err := c.Taken(ctx, []string{username})
	require.NoError(t, err)
	require.True(t, taken[username])

	require.Equal(t, p.Owner, e.Owner, "the entry carries its joiner's marker")
	require.Equal(t, p.OwnerRun, e.OwnerRun)
	raw := rawEntry(t, acct.DN)
	require.Contains(t, raw.GetAttributeValues("objectClass"), ManagedClass)
	require.True(t, sameDN(stack.LDAPServiceDN, raw.GetAttributeValue("creatorsName")), "created by the service account")

	require.NoError(t, c.Delete(ctx, acct.DN, p.Owner))
	require.NoError(t, c.Delete(ctx, acct.DN, p.Owner), "deleting a missing entry succeeds")
	gone, err := c.FindByEmployeeID(ctx, p.EmployeeID, false)
	require.NoError(t, err)
	require.Nil(t, gone)
}

func TestIntegrationClaimIsIdempotent(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	p := person(t, "Twice", "Claimed")
	username := "twice-" + tag(t)

	first, err := c.Claim(ctx, username, p)
	require.NoError(t, err)
	deleteLater(t, c, first.DN)
	require.False(t, first.Existing)

	second, err := c.Claim(ctx, username, p)
	require.NoError(t, err)
	require.True(t, second.Existing)
	require.Equal(t, first.Username, second.Username)
	require.True(t, sameDN(first.DN, second.DN))
}

func TestIntegrationClaimTakenByAnother(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()

	_, err := c.Claim(ctx, "john.smith", person(t, "John", "Smith"))
	require.ErrorIs(t, err, ErrUsernameTaken)
	requireType(t, err, TypeUsernameTaken, false)

	// Case differences do not dodge the directory's uniqueness.
	_, err = c.Claim(ctx, "John.Smith", person(t, "John", "Smith"))
	require.ErrorIs(t, err, ErrUsernameTaken)
}

func TestIntegrationClaimFirstFallsBack(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	prefix := "jsmith-" + tag(t)

	// Another joiner holds prefix-a.
	other, err := c.Claim(ctx, prefix+"-a", person(t, "Jim", "Smith"))
	require.NoError(t, err)
	deleteLater(t, c, other.DN)

	p := person(t, "John", "Smith")
	candidates := []string{"john.smith", "jsmith", prefix + "-a", prefix + "-b", prefix + "-c"}
	acct, err := c.ClaimFirst(ctx, candidates, p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	require.Equal(t, prefix+"-b", acct.Username)
	require.False(t, acct.Existing)

	// A retry finds the earlier success, even if the candidates changed.
	again, err := c.ClaimFirst(ctx, []string{prefix + "-c"}, p)
	require.NoError(t, err)
	require.Equal(t, Account{Username: acct.Username, DN: acct.DN, Existing: true}, again)

	// Nothing left for a third Smith.
	_, err = c.ClaimFirst(ctx, []string{"john.smith", "jsmith", prefix + "-a"}, person(t, "Joan", "Smith"))
	requireType(t, err, TypeUsernameExhausted, false)
	require.ErrorIs(t, err, ErrNoCandidate)
}

// TestIntegrationClaimRace is the product's core promise: two joiners
// claiming the same name at the same moment never both get it.
func TestIntegrationClaimRace(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	run := tag(t)

	for round := range 50 {
		username := fmt.Sprintf("race-%s-%02d", run, round)
		people := []Person{person(t, "Race", "One"), person(t, "Race", "Two")}
		accts := make([]Account, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range people {
			wg.Go(func() {
				<-start
				accts[i], errs[i] = c.Claim(ctx, username, people[i])
			})
		}
		close(start)
		wg.Wait()

		var winners []int
		for i := range people {
			if errs[i] == nil {
				require.False(t, accts[i].Existing, "round %d", round)
				winners = append(winners, i)
				deleteLater(t, c, accts[i].DN)
			} else {
				require.ErrorIs(t, errs[i], ErrUsernameTaken, "round %d", round)
			}
		}
		require.Len(t, winners, 1, "round %d: exactly one joiner gets %s", round, username)
		w := winners[0]
		e, err := c.FindByEmployeeID(ctx, people[w].EmployeeID, false)
		require.NoError(t, err)
		require.NotNil(t, e)
		require.Equal(t, username, e.Username)
		loser, err := c.FindByEmployeeID(ctx, people[1-w].EmployeeID, false)
		require.NoError(t, err)
		require.Nil(t, loser, "round %d: the loser left nothing behind", round)
	}
}

// TestIntegrationClaimFirstRace: two namesakes with the same candidate list
// end up with two different names.
func TestIntegrationClaimFirstRace(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	run := tag(t)

	for round := range 20 {
		candidates := []string{"john.smith", fmt.Sprintf("js-%s-%02d", run, round), fmt.Sprintf("js-%s-%02d-2", run, round)}
		people := []Person{person(t, "John", "Smith"), person(t, "John", "Smith")}
		accts := make([]Account, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range people {
			wg.Go(func() {
				<-start
				accts[i], errs[i] = c.ClaimFirst(ctx, candidates, people[i])
			})
		}
		close(start)
		wg.Wait()
		for i := range people {
			require.NoError(t, errs[i], "round %d", round)
			deleteLater(t, c, accts[i].DN)
		}
		require.NotEqual(t, accts[0].Username, accts[1].Username, "round %d", round)
		require.ElementsMatch(t, candidates[1:], []string{accts[0].Username, accts[1].Username})
	}
}

// TestIntegrationCrossContainerRace: a human and a non-human claiming the
// same name land in different containers, where LDAP alone would let both
// adds succeed. At most one may keep the name.
func TestIntegrationCrossContainerRace(t *testing.T) {
	c, ep := integrationClient(t)
	ctx := context.Background()
	run := tag(t)

	for round := range 20 {
		username := fmt.Sprintf("xrace-%s-%02d", run, round)
		human := person(t, "Cross", "Human")
		bot := robot(t, "Cross robot")
		people := []Person{human, bot}
		accts := make([]Account, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range people {
			wg.Go(func() {
				<-start
				accts[i], errs[i] = c.Claim(ctx, username, people[i])
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i := range people {
			if errs[i] == nil {
				winners++
				deleteLater(t, c, accts[i].DN)
			} else {
				require.ErrorIs(t, errs[i], ErrUsernameTaken, "round %d", round)
			}
		}
		require.LessOrEqual(t, winners, 1, "round %d", round)
		require.Equal(t, winners, holderCount(t, ep, username), "round %d: only the winner's entry remains", round)
	}

	// Sequentially, the second claimer always sees the first and withdraws.
	username := "xseq-" + run
	bot, err := c.Claim(ctx, username, robot(t, "Seq robot"))
	require.NoError(t, err)
	deleteLater(t, c, bot.DN)
	require.Equal(t, "uid="+username+",ou=service-accounts,"+seedBase, bot.DN)
	_, err = c.Claim(ctx, username, person(t, "Seq", "Human"))
	require.ErrorIs(t, err, ErrUsernameTaken)
	require.Equal(t, 1, holderCount(t, ep, username))
}

func TestIntegrationMembership(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	p := person(t, "Group", "Member")
	acct, err := c.Claim(ctx, "member-"+tag(t), p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	group := c.GroupDN("all-staff")
	t.Cleanup(func() { require.NoError(t, c.RemoveMember(context.Background(), group, acct.DN, p.Owner)) })

	isMember := func() bool {
		t.Helper()
		ok, err := c.IsMember(ctx, group, acct.DN)
		require.NoError(t, err)
		return ok
	}
	require.False(t, isMember())
	for range 2 {
		require.NoError(t, c.AddMember(ctx, group, acct.DN, p.Owner))
		require.True(t, isMember())
	}
	// The server compares DNs, not strings.
	ok, err := c.IsMember(ctx, strings.ToUpper(group), strings.ToUpper(acct.DN))
	require.NoError(t, err)
	require.True(t, ok)
	for range 2 {
		require.NoError(t, c.RemoveMember(ctx, group, acct.DN, p.Owner))
		require.False(t, isMember())
	}
	// The seeded placeholder is untouched.
	ok, err = c.IsMember(ctx, group, "cn=placeholder,ou=groups,"+seedBase)
	require.NoError(t, err)
	require.True(t, ok)

	// Removing from a group that does not exist has nothing to undo.
	require.NoError(t, c.RemoveMember(ctx, c.GroupDN("no-such-group-"+tag(t)), acct.DN, p.Owner))
	_, err = c.IsMember(ctx, c.GroupDN("no-such-group-"+tag(t)), acct.DN)
	requireType(t, err, TypeNoSuchEntry, false)
}

func TestIntegrationPasswordAndDisable(t *testing.T) {
	c, ep := integrationClient(t)
	ctx := context.Background()
	p := person(t, "Pass", "Word")
	acct, err := c.Claim(ctx, "pw-"+tag(t), p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)

	password := "Initial-" + tag(t) + "-Pa55"
	require.NoError(t, c.SetPassword(ctx, acct.DN, p.Owner, password))
	require.NoError(t, bind(t, ep, acct.DN, password))
	require.True(t, ldap.IsErrorWithCode(bind(t, ep, acct.DN, password+"x"), ldap.LDAPResultInvalidCredentials))

	// The stored password is hashed by the server, never the clear text.
	e, err := c.FindByEmployeeID(ctx, p.EmployeeID, false)
	require.NoError(t, err)
	require.NotContains(t, e.Attributes, "userPassword")

	for range 2 {
		require.NoError(t, c.Disable(ctx, acct.DN, p.Owner))
		require.True(t, ldap.IsErrorWithCode(bind(t, ep, acct.DN, password), ldap.LDAPResultInvalidCredentials),
			"a disabled account cannot bind")
	}
	e, err = c.FindByEmployeeID(ctx, p.EmployeeID, false)
	require.NoError(t, err)
	require.Equal(t, []string{DisabledMarker}, e.Attributes["description"], "marker recorded once")

	// Errors never carry the password.
	err = c.SetPassword(ctx, "uid=nobody-"+tag(t)+","+seedPeople, p.Owner, password)
	require.Error(t, err)
	require.False(t, connectors.IsRetryable(err))
	require.NotContains(t, err.Error(), password)
	requireType(t, c.Disable(ctx, "uid=nobody-"+tag(t)+","+seedPeople, p.Owner), TypeNoSuchEntry, false)
}

func TestIntegrationPosixAndNonHuman(t *testing.T) {
	c, _ := integrationClient(t, func(cfg *Config) { cfg.Profile = OpenLDAPProfile{Posix: true} })
	ctx := context.Background()

	human := person(t, "Posix", "Human")
	h, err := c.Claim(ctx, "posix-"+tag(t), human)
	require.NoError(t, err)
	deleteLater(t, c, h.DN)
	e, err := c.FindByEmployeeID(ctx, human.EmployeeID, false)
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprint(10000 + mustAtoi(t, human.EmployeeID))}, e.Attributes["uidNumber"])
	require.Equal(t, []string{"/home/" + h.Username}, e.Attributes["homeDirectory"])
	require.Equal(t, []string{DefaultLoginShell}, e.Attributes["loginShell"])

	bot := robot(t, "Deploy bot")
	r, err := c.Claim(ctx, "svc-"+tag(t), bot)
	require.NoError(t, err)
	deleteLater(t, c, r.DN)
	require.Equal(t, "uid="+r.Username+",ou=service-accounts,"+seedBase, r.DN)
	e, err = c.FindByEmployeeID(ctx, bot.EmployeeID, true)
	require.NoError(t, err)
	require.Equal(t, []string{NoLoginShell}, e.Attributes["loginShell"])
	require.Equal(t, []string{"Deploy bot"}, e.Attributes["sn"])
	none, err := c.FindByEmployeeID(ctx, bot.EmployeeID, false)
	require.NoError(t, err)
	require.Nil(t, none, "non-humans are not searched under people")

	// Disabling a POSIX account takes its shell away too.
	require.NoError(t, c.SetPassword(ctx, h.DN, human.Owner, "Posix-Pa55-"+tag(t)))
	require.NoError(t, c.Disable(ctx, h.DN, human.Owner))
	e, err = c.FindByEmployeeID(ctx, human.EmployeeID, false)
	require.NoError(t, err)
	require.Equal(t, []string{NoLoginShell}, e.Attributes["loginShell"])
}

func TestIntegrationDirectoryErrors(t *testing.T) {
	c, ep := integrationClient(t)
	ctx := context.Background()

	// loginShell belongs to posixAccount, which the plain profile does not add.
	p := person(t, "Schema", "Violation")
	p.Extra = map[string][]string{"loginShell": {"/bin/sh"}}
	_, err := c.Claim(ctx, "schema-"+tag(t), p)
	requireType(t, err, TypeSchemaViolation, false)
	e, err := c.FindByEmployeeID(ctx, p.EmployeeID, false)
	require.NoError(t, err)
	require.Nil(t, e, "a refused add leaves nothing")

	// Two entries with one employee id (here made on purpose by two
	// joiners, with Claim, which does not look for the person's other
	// entries) are reported, never guessed between.
	dup := person(t, "Dup", "Licate")
	a, err := c.Claim(ctx, "dup-a-"+tag(t), dup)
	require.NoError(t, err)
	deleteLater(t, c, a.DN)
	dup2 := dup
	dup2.Owner = "joiner-it-other-" + tag(t)
	b, err := c.Claim(ctx, "dup-b-"+tag(t), dup2)
	require.NoError(t, err)
	deleteLater(t, c, b.DN)
	_, err = c.FindByEmployeeID(ctx, dup.EmployeeID, false)
	requireType(t, err, TypeDuplicateEmployeeID, false)
	dup3 := dup
	dup3.Owner = "joiner-it-third-" + tag(t)
	_, err = c.ClaimFirst(ctx, []string{"dup-c-" + tag(t)}, dup3)
	requireType(t, err, TypeAlreadyProvisioned, false)

	// Wrong bind password: permanent, and the password is not in the error.
	wrong, _ := integrationClient(t, func(cfg *Config) { cfg.BindPassword = "definitely-wrong-" + tag(t) })
	_, err = wrong.Taken(ctx, []string{"john.smith"})
	ce := requireType(t, err, TypeInvalidCredentials, false)
	require.NotContains(t, err.Error(), "definitely-wrong")
	require.Contains(t, ce.Error(), stack.LDAPServiceDN)
	_ = ep

	// An unprivileged bind DN may read but not write.
	rp := person(t, "Read", "Only")
	reader, err := c.Claim(ctx, "reader-"+tag(t), rp)
	require.NoError(t, err)
	deleteLater(t, c, reader.DN)
	pw := "Reader-Pa55-" + tag(t)
	require.NoError(t, c.SetPassword(ctx, reader.DN, rp.Owner, pw))
	weak, _ := integrationClient(t, func(cfg *Config) { cfg.BindDN = reader.DN; cfg.BindPassword = pw })
	_, err = weak.Claim(ctx, "denied-"+tag(t), person(t, "Access", "Denied"))
	requireType(t, err, TypeAccessDenied, false)
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

// ClaimFirstWith builds each candidate's entry from its username, so the
// entry's mail follows the name actually claimed, not the first candidate.
func TestIntegrationClaimFirstWithBuildsPerCandidate(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	prefix := "pc-" + tag(t)
	base := person(t, "John", "Smith")
	build := func(u string) Person {
		p := base
		p.Mail = u + "@joinery.test"
		return p
	}
	acct, err := c.ClaimFirstWith(ctx, []string{"john.smith", prefix}, build)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	require.Equal(t, prefix, acct.Username)
	e, err := c.FindByEmployeeID(ctx, base.EmployeeID, false)
	require.NoError(t, err)
	require.Equal(t, []string{prefix + "@joinery.test"}, e.Attributes["mail"])

	// A builder that changes the joiner's identity is refused before any write.
	_, err = c.ClaimFirstWith(ctx, []string{prefix + "-x", prefix + "-y"}, func(u string) Person {
		p := build(u)
		p.EmployeeID += u
		return p
	})
	require.Error(t, err)
	taken, err := c.Taken(ctx, []string{prefix + "-x", prefix + "-y"})
	require.NoError(t, err)
	require.False(t, taken[prefix+"-x"] || taken[prefix+"-y"])
}
