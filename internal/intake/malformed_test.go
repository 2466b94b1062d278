package intake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/hris"
)

// malformed is one bad request. rowLevel marks bulk uploads whose rows are
// all bad: the upload as a whole is answered 200 (results stream), and every
// row must carry a 4xx status and outcome "invalid".
type malformed struct {
	name     string
	r        req
	rowLevel bool
	// then, when set, is sent after r (a replay) and must be refused too.
	then *req
}

var (
	long65  = strings.Repeat("a", 65)
	long129 = strings.Repeat("n", 129)
	long201 = strings.Repeat("e", 201)
)

// Bad values per field class. Every one must be refused by Normalize.
var (
	badHRISIDs = map[string]string{
		"empty": "", "spaces": "   ", "too long": long65, "inner space": "a b", "slash": "a/b",
		"leading dash": "-abc", "leading dot": ".abc", "leading underscore": "_abc", "dollar": "ab$",
		"non-ascii": "é1", "nul": "a\x00b", "newline": "a\nb", "semicolon": "joiner;x", "unicode digit": "١٢٣",
	}
	badKinds = map[string]string{
		"unknown": "robot", "plural": "employees", "inner space": "emp loyee", "too long": long201, "human": "human",
	}
	badTexts = map[string]string{
		"too long": long129, "bell": "a\x07b", "tab": "a\tb", "newline": "a\nb", "del": "a\x7fb",
		"bidi override": "a\u202eb", "nul": "a\x00b",
	}
	badEventIDs = map[string]string{"space": "has space", "too long": long201, "non-ascii": "évent", "newline": "a\nb"}
	badDates    = map[string]string{
		"month 13": "2027-13-01", "feb 30": "2027-02-30", "us format": "01/02/2027", "short month": "2027-1-01",
		"compact": "20270101", "datetime": "2027-01-01T00:00:00Z", "word": "tomorrow", "short day": "2027-01-1",
		"month 00": "2027-00-10", "day 00": "2027-01-00", "5-digit year": "20270-01-01",
	}
	badEmails = map[string]string{
		"no at": "plain", "no local": "@example.com", "no domain": "a@", "undotted domain": "a@b",
		"space": "a b@example.com", "display name": "Ann <a@example.com>", "double dot": "a@example..com",
		"leading dot": "a@.example.com", "trailing dot": "a@example.com.", "two ats": "a@@example.com",
		"comment": "(c)a@example.com", "too long": strings.Repeat("x", 250) + "@example.com", "comma": "a,b@example.com",
	}
)

// jsonPathCases are the field-level cases for the JSON shapes (the /joiners
// API and NDJSON rows): base is a valid object, fields the allowed names.
func jsonFieldCases(base map[string]any, fields []string) []struct {
	name string
	obj  map[string]any
} {
	type c = struct {
		name string
		obj  map[string]any
	}
	var out []c
	with := func(k string, v any) map[string]any {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	has := func(k string) bool {
		for _, f := range fields {
			if f == k {
				return true
			}
		}
		return false
	}
	without := maps.Clone(base)
	delete(without, "hrisId")
	out = append(out, c{"hrisId missing", without}, c{"hrisId null", with("hrisId", nil)})
	for n, v := range badHRISIDs {
		out = append(out, c{"hrisId " + n, with("hrisId", v)})
	}
	for n, v := range badKinds {
		out = append(out, c{"kind " + n, with("kind", v)})
	}
	for n, v := range badTexts {
		out = append(out, c{"requestedBy " + n, with("requestedBy", v)})
	}
	for n, v := range badEventIDs {
		out = append(out, c{"eventId " + n, with("eventId", v)})
	}
	for _, f := range []string{"hrisId", "kind", "requestedBy"} {
		out = append(out,
			c{f + " number", with(f, 123)}, c{f + " bool", with(f, true)},
			c{f + " list", with(f, []any{"x"})}, c{f + " object", with(f, map[string]any{"x": 1})})
	}
	out = append(out, c{"unknown field", with("colour", "red")}, c{"misspelt field", with("hrisID_", "1")})
	if has("hireDate") {
		for n, v := range badDates {
			out = append(out, c{"hireDate " + n, with("hireDate", v)}, c{"endDate " + n, with("endDate", v)})
		}
		m := with("hireDate", "2027-03-01")
		m["endDate"] = "2027-02-01"
		out = append(out, c{"endDate before hireDate", m})
		for n, v := range badEmails {
			out = append(out, c{"email " + n, with("email", v)})
		}
		for n, v := range badTexts {
			out = append(out, c{"firstName " + n, with("firstName", v)}, c{"department " + n, with("department", v)})
		}
		out = append(out, c{"managerId bad", with("managerId", "boss!")}, c{"managerId too long", with("managerId", long65)},
			c{"hireDate number", with("hireDate", 20270101)})
	}
	return out
}

func malformedCases(t *testing.T) []malformed {
	var cases []malformed
	add := func(m malformed) { cases = append(cases, m) }

	// --- POST /joiners -------------------------------------------------
	api := func(body []byte) req { return req{path: "/joiners", ctype: "application/json", body: body} }
	for _, c := range jsonFieldCases(map[string]any{"hrisId": "it-1", "kind": "employee", "requestedBy": "ops"},
		[]string{"hrisId", "kind", "requestedBy", "eventId"}) {
		add(malformed{name: "api/" + c.name, r: api(mustJSON(c.obj))})
	}
	for n, b := range map[string]string{
		"empty body": "", "truncated": `{"hrisId":"a"`, "list": `[{"hrisId":"a"}]`, "string": `"a"`, "number": `1`,
		"null": `null`, "empty object": `{}`, "trailing data": `{"hrisId":"a"} x`, "two objects": `{"hrisId":"a"}{"hrisId":"b"}`,
		"single quotes": `{'hrisId':'a'}`, "invalid utf8": "{\"hrisId\":\"\xff\xfe\"}", "bare word": `hrisId=a`,
		"unquoted key": `{hrisId:"a"}`, "trailing comma": `{"hrisId":"a",}`,
	} {
		add(malformed{name: "api/json " + n, r: api([]byte(b))})
	}
	valid := mustJSON(map[string]any{"hrisId": "it-1"})
	add(malformed{name: "api/content-type text", r: req{path: "/joiners", ctype: "text/plain", body: valid}})
	add(malformed{name: "api/content-type missing", r: req{path: "/joiners", body: valid}})
	add(malformed{name: "api/content-type form", r: req{path: "/joiners", ctype: "application/x-www-form-urlencoded", body: []byte("hrisId=a")}})
	add(malformed{name: "api/oversize", r: api(mustJSON(map[string]any{"hrisId": "it-1", "requestedBy": strings.Repeat("x", 70<<10)}))})
	add(malformed{name: "api/no token", r: req{path: "/joiners", ctype: "application/json", body: valid, noAuth: true}})
	add(malformed{name: "api/wrong token", r: req{path: "/joiners", ctype: "application/json", body: valid,
		headers: map[string]string{"Authorization": "Bearer wrong"}}})
	add(malformed{name: "api/basic auth", r: req{path: "/joiners", ctype: "application/json", body: valid,
		headers: map[string]string{"Authorization": "Basic " + testToken}}})
	add(malformed{name: "api/empty bearer", r: req{path: "/joiners", ctype: "application/json", body: valid,
		headers: map[string]string{"Authorization": "Bearer "}}})
	add(malformed{name: "api/GET", r: req{method: http.MethodGet, path: "/joiners"}})
	add(malformed{name: "api/unknown path", r: api(valid)})
	cases[len(cases)-1].r.path = "/joiner"

	// --- POST /joiners:bulk, NDJSON ------------------------------------
	nd := func(body []byte) req { return req{path: "/joiners:bulk", ctype: "application/x-ndjson", body: body} }
	for _, c := range jsonFieldCases(map[string]any{"hrisId": "it-1", "kind": "employee"},
		[]string{"hrisId", "kind", "requestedBy", "eventId", "hireDate"}) {
		add(malformed{name: "ndjson/" + c.name, r: nd(append(mustJSON(c.obj), '\n')), rowLevel: true})
	}
	for n, b := range map[string]string{
		"truncated": `{"hrisId":"a"`, "list": `["a"]`, "string": `"a"`, "two objects": `{"hrisId":"a"}{"hrisId":"b"}`,
		"single quotes": `{'hrisId':'a'}`, "null": `null`, "too long line": `{"hrisId":"a","department":"` + strings.Repeat("d", MaxLineBytes) + `"}`,
	} {
		add(malformed{name: "ndjson/line " + n, r: nd([]byte(b + "\n")), rowLevel: true})
	}
	add(malformed{name: "ndjson/empty body", r: nd(nil)})
	add(malformed{name: "ndjson/blank lines only", r: nd([]byte("\n  \n\n"))})
	add(malformed{name: "ndjson/oversize", r: nd([]byte(strings.Repeat(`{"hrisId":"it-1"}`+"\n", (1<<20)/17+10)))})
	add(malformed{name: "ndjson/content-type json", r: req{path: "/joiners:bulk", ctype: "application/json", body: []byte(`{"hrisId":"a"}`)}})
	add(malformed{name: "ndjson/no token", r: req{path: "/joiners:bulk", ctype: "application/x-ndjson", body: []byte(`{"hrisId":"a"}`), noAuth: true}})

	// --- POST /joiners:bulk, CSV ---------------------------------------
	csvReq := func(body string) req { return req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(body)} }
	csvCell := func(v string) string { return `"` + strings.ReplaceAll(v, `"`, `""`) + `"` }
	header := "hrisId,kind,requestedBy,eventId,hireDate,endDate,email,firstName,lastName,department,managerId\n"
	row := func(col int, v string) string {
		cells := []string{"it-1", "employee", "ops", "", "2027-02-01", "", "a@example.com", "Ann", "Lee", "Eng", ""}
		cells[col] = v
		for i := range cells {
			cells[i] = csvCell(cells[i])
		}
		return header + strings.Join(cells, ",") + "\n"
	}
	for n, v := range badHRISIDs {
		add(malformed{name: "csv/hrisId " + n, r: csvReq(row(0, v)), rowLevel: true})
	}
	for n, v := range badKinds {
		add(malformed{name: "csv/kind " + n, r: csvReq(row(1, v)), rowLevel: true})
	}
	for n, v := range badTexts {
		add(malformed{name: "csv/requestedBy " + n, r: csvReq(row(2, v)), rowLevel: true})
		add(malformed{name: "csv/lastName " + n, r: csvReq(row(8, v)), rowLevel: true})
	}
	for n, v := range badDates {
		add(malformed{name: "csv/hireDate " + n, r: csvReq(row(4, v)), rowLevel: true})
	}
	for n, v := range badEmails {
		add(malformed{name: "csv/email " + n, r: csvReq(row(6, v)), rowLevel: true})
	}
	add(malformed{name: "csv/endDate before hireDate", r: csvReq(row(5, "2027-01-01")), rowLevel: true})
	add(malformed{name: "csv/invalid utf8 name", r: csvReq(row(7, "\xff\xfe")), rowLevel: true})
	add(malformed{name: "csv/too few fields", r: csvReq("hrisId,kind\nit-1\n"), rowLevel: true})
	add(malformed{name: "csv/too many fields", r: csvReq("hrisId,kind\nit-1,employee,extra\n"), rowLevel: true})
	add(malformed{name: "csv/bare quote", r: csvReq("hrisId,kind\nit\"1,employee\n"), rowLevel: true})
	add(malformed{name: "csv/unterminated quote", r: csvReq("hrisId,kind\n\"it-1,employee\n"), rowLevel: true})
	add(malformed{name: "csv/quote in quoted field", r: csvReq("hrisId,kind\n\"it\"1\",employee\n"), rowLevel: true})
	add(malformed{name: "csv/empty body", r: csvReq("")})
	add(malformed{name: "csv/header only", r: csvReq("hrisId,kind\n")})
	add(malformed{name: "csv/unknown column", r: csvReq("hrisId,salary\nit-1,100\n")})
	add(malformed{name: "csv/duplicate column", r: csvReq("hrisId,kind,Kind\nit-1,employee,employee\n")})
	add(malformed{name: "csv/no hrisId column", r: csvReq("kind,email\nemployee,a@example.com\n")})
	add(malformed{name: "csv/empty column name", r: csvReq("hrisId,,kind\nit-1,x,employee\n")})
	add(malformed{name: "csv/malformed header", r: csvReq("hrisId,\"kind\n")})
	add(malformed{name: "csv/oversize declared", r: req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(strings.Repeat("a", 1<<20+1))}})
	add(malformed{name: "csv/content-type excel", r: req{path: "/joiners:bulk", ctype: "application/vnd.ms-excel", body: []byte(row(0, "it-1"))}})
	add(malformed{name: "csv/wrong token", r: req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(row(0, "it-1")),
		headers: map[string]string{"Authorization": "Bearer " + testToken + "x"}}})

	// --- POST /scim/v2/Bulk --------------------------------------------
	scim := func(v any) req { return req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(v)} }
	withUser := func(mut func(u map[string]any)) req {
		u := scimUserData("it-1")
		mut(u)
		return scim(scimRequest(u))
	}
	ent := func(u map[string]any) map[string]any { return u[SCIMEnterpriseURN].(map[string]any) }
	ext := func(u map[string]any) map[string]any {
		return u["urn:ietf:params:scim:schemas:extension:joinery:1.0:User"].(map[string]any)
	}
	add(malformed{name: "scim/employeeNumber missing", r: withUser(func(u map[string]any) { delete(ent(u), "employeeNumber") })})
	add(malformed{name: "scim/enterprise extension missing", r: withUser(func(u map[string]any) { delete(u, SCIMEnterpriseURN) })})
	add(malformed{name: "scim/employeeNumber number", r: withUser(func(u map[string]any) { ent(u)["employeeNumber"] = 701984 })})
	for n, v := range badHRISIDs {
		add(malformed{name: "scim/employeeNumber " + n, r: withUser(func(u map[string]any) { ent(u)["employeeNumber"] = v })})
	}
	for n, v := range badTexts {
		add(malformed{name: "scim/givenName " + n, r: withUser(func(u map[string]any) { u["name"].(map[string]any)["givenName"] = v })})
		add(malformed{name: "scim/department " + n, r: withUser(func(u map[string]any) { ent(u)["department"] = v })})
	}
	for n, v := range badEmails {
		add(malformed{name: "scim/email " + n, r: withUser(func(u map[string]any) {
			u["emails"] = []any{map[string]any{"value": v, "type": "work", "primary": true}}
		})})
	}
	for n, v := range badDates {
		add(malformed{name: "scim/HireDate " + n, r: withUser(func(u map[string]any) { ext(u)["HireDate"] = v })})
	}
	for n, v := range badKinds {
		add(malformed{name: "scim/kind " + n, r: withUser(func(u map[string]any) { ext(u)["kind"] = v })})
	}
	add(malformed{name: "scim/manager value bad", r: withUser(func(u map[string]any) { ent(u)["manager"] = map[string]any{"value": "a b"} })})
	add(malformed{name: "scim/manager string", r: withUser(func(u map[string]any) { ent(u)["manager"] = "89607" })})
	add(malformed{name: "scim/name string", r: withUser(func(u map[string]any) { u["name"] = "Barbara Jensen" })})
	add(malformed{name: "scim/emails object", r: withUser(func(u map[string]any) { u["emails"] = map[string]any{"value": "a@example.com"} })})
	add(malformed{name: "scim/active string", r: withUser(func(u map[string]any) { u["active"] = "yes" })})
	add(malformed{name: "scim/HireDate number", r: withUser(func(u map[string]any) { ext(u)["HireDate"] = 20270201 })})
	add(malformed{name: "scim/extension not object", r: withUser(func(u map[string]any) {
		u["urn:ietf:params:scim:schemas:extension:joinery:1.0:User"] = "x"
	})})
	add(malformed{name: "scim/core schema missing", r: withUser(func(u map[string]any) { u["schemas"] = []string{SCIMEnterpriseURN} })})
	add(malformed{name: "scim/schemas string", r: withUser(func(u map[string]any) { u["schemas"] = SCIMUserURN })})
	opWith := func(mut func(op map[string]any)) req {
		r := scimRequest(scimUserData("it-1"))
		mut(r["Operations"].([]any)[0].(map[string]any))
		return scim(r)
	}
	for _, m := range []string{"PUT", "PATCH", "DELETE", "GET", "post", ""} {
		add(malformed{name: "scim/method " + m, r: opWith(func(op map[string]any) { op["method"] = m })})
	}
	for _, p := range []string{"/Groups", "/Users/123", "", "Users"} {
		add(malformed{name: "scim/path " + p, r: opWith(func(op map[string]any) { op["path"] = p })})
	}
	add(malformed{name: "scim/bulkId missing", r: opWith(func(op map[string]any) { delete(op, "bulkId") })})
	add(malformed{name: "scim/bulkId space", r: opWith(func(op map[string]any) { op["bulkId"] = "a b" })})
	add(malformed{name: "scim/bulkId too long", r: opWith(func(op map[string]any) { op["bulkId"] = long201 })})
	add(malformed{name: "scim/data missing", r: opWith(func(op map[string]any) { delete(op, "data") })})
	add(malformed{name: "scim/data null", r: opWith(func(op map[string]any) { op["data"] = nil })})
	add(malformed{name: "scim/data list", r: opWith(func(op map[string]any) { op["data"] = []any{} })})
	add(malformed{name: "scim/data string", r: opWith(func(op map[string]any) { op["data"] = "user" })})
	dup := scimRequest(scimUserData("it-1"), scimUserData("it-2"))
	dup["Operations"].([]any)[1].(map[string]any)["bulkId"] = "bulk-0"
	add(malformed{name: "scim/duplicate bulkId", r: scim(dup)})
	// One bad operation among good ones: nothing at all may start.
	mixed := scimRequest(scimUserData("it-1"), scimUserData("it-2"), scimUserData("bad id"))
	add(malformed{name: "scim/one bad op among good", r: scim(mixed)})
	noSchema := scimRequest(scimUserData("it-1"))
	delete(noSchema, "schemas")
	add(malformed{name: "scim/request schemas missing", r: scim(noSchema)})
	wrongSchema := scimRequest(scimUserData("it-1"))
	wrongSchema["schemas"] = []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}
	add(malformed{name: "scim/request schemas wrong", r: scim(wrongSchema)})
	add(malformed{name: "scim/no operations", r: scim(map[string]any{"schemas": []string{SCIMBulkRequestURN}, "Operations": []any{}})})
	add(malformed{name: "scim/operations missing", r: scim(map[string]any{"schemas": []string{SCIMBulkRequestURN}})})
	add(malformed{name: "scim/operations object", r: scim(map[string]any{"schemas": []string{SCIMBulkRequestURN}, "Operations": map[string]any{}})})
	add(malformed{name: "scim/failOnErrors negative", r: scim(func() map[string]any {
		r := scimRequest(scimUserData("it-1"))
		r["failOnErrors"] = -1
		return r
	}())})
	many := make([]map[string]any, MaxSCIMOperations+1)
	for i := range many {
		many[i] = map[string]any{"schemas": []string{SCIMUserURN}}
	}
	manyReq := scim(scimRequest(many...))
	add(malformed{name: "scim/too many operations over the body limit", r: manyReq})
	for n, b := range map[string]string{"empty": "", "truncated": `{"schemas":[`, "list": `[]`, "string": `"x"`, "garbage": `<xml/>`} {
		add(malformed{name: "scim/json " + n, r: req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: []byte(b)}})
	}
	add(malformed{name: "scim/oversize", r: req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: []byte(`{"x":"` + strings.Repeat("x", 70<<10) + `"}`)}})
	add(malformed{name: "scim/content-type xml", r: req{path: "/scim/v2/Bulk", ctype: "application/xml", body: mustJSON(scimRequest(scimUserData("it-1")))}})
	add(malformed{name: "scim/no token", r: req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(scimRequest(scimUserData("it-1"))), noAuth: true}})

	// --- POST /hris/webhook --------------------------------------------
	good := webhookBody(event("4242", "Created", nil, map[string]any{"firstName": "Ann", "hireDate": "2027-02-01"}))
	now := testNow
	add(malformed{name: "webhook/unsigned", r: req{path: "/hris/webhook", ctype: "application/json", body: good, noAuth: true}})
	wrong := signedWebhook(good, now)
	wrong.headers[hris.SignatureHeader] = strings.Repeat("ab", 32)
	add(malformed{name: "webhook/wrong signature", r: wrong})
	wrongKey := signedWebhook(good, now)
	sig, _ := hris.Sign([]byte("another-secret"), good, now)
	wrongKey.headers[hris.SignatureHeader] = sig
	add(malformed{name: "webhook/signed with another key", r: wrongKey})
	tampered := signedWebhook(good, now)
	tampered.body = []byte(strings.Replace(string(good), "4242", "4243", 1))
	add(malformed{name: "webhook/tampered body", r: tampered})
	add(malformed{name: "webhook/stale", r: signedWebhook(good, now.Add(-10*time.Minute))})
	add(malformed{name: "webhook/from the future", r: signedWebhook(good, now.Add(10*time.Minute))})
	noTS := signedWebhook(good, now)
	noTS.headers[hris.TimestampHeader] = ""
	add(malformed{name: "webhook/no timestamp", r: noTS})
	prefixed := signedWebhook(good, now)
	prefixed.headers[hris.SignatureHeader] = "sha256=" + prefixed.headers[hris.SignatureHeader]
	add(malformed{name: "webhook/prefixed signature", r: prefixed})
	// A replay of a delivery that verified: the first is refused for its
	// content (so nothing starts), the byte-identical resend as a replay.
	invalidButSigned := webhookBody(event("4244", "Created", nil, map[string]any{"hireDate": "2027-13-01"}))
	first := signedWebhook(invalidButSigned, now.Add(-time.Second))
	again := first
	add(malformed{name: "webhook/replayed", r: first, then: &again})
	for n, b := range map[string]string{
		"not json": `not json`, "no employees": `{"employees":[]}`, "employees object": `{"employees":{}}`,
		"id letters": string(webhookBody(event("abc", "Created", nil, nil))), "id zero": string(webhookBody(event("0", "Created", nil, nil))),
		"id negative": string(webhookBody(event(-5, "Created", nil, nil))), "id missing": `{"employees":[{"action":"Created"}]}`,
		"unknown action": string(webhookBody(event("4242", "Hired", nil, nil))), "fields list": `{"employees":[{"id":"4242","action":"Created","fields":["a"]}]}`,
		"field object":  string(webhookBody(event("4242", "Created", nil, map[string]any{"hireDate": map[string]any{"y": 2027}}))),
		"bad timestamp": `{"employees":[{"id":"4242","action":"Created","timestamp":"yesterday"}]}`,
	} {
		add(malformed{name: "webhook/payload " + n, r: signedWebhook([]byte(b), now)})
	}
	i := 0
	fieldCase := func(name string, fields map[string]any, changed ...string) {
		i++
		add(malformed{name: "webhook/" + name, r: signedWebhook(webhookBody(event(fmt.Sprint(5000+i), "Updated", changed, fields)), now.Add(-time.Duration(i)*time.Second))})
	}
	for n, v := range badDates {
		fieldCase("hireDate "+n, map[string]any{"hireDate": v}, "hireDate")
		fieldCase("terminationDate "+n, map[string]any{"terminationDate": v}, "terminationDate")
	}
	for n, v := range badEmails {
		fieldCase("workEmail "+n, map[string]any{"workEmail": v})
	}
	for n, v := range badTexts {
		fieldCase("firstName "+n, map[string]any{"firstName": v})
	}
	fieldCase("status unknown", map[string]any{"status": "Terminated"}, "status")
	fieldCase("supervisor bad", map[string]any{"supervisorEId": "a b"})
	// A bad event after good ones: the whole delivery is refused.
	mixedHook := webhookBody(event("6001", "Created", nil, nil), event("6002", "Created", nil, nil),
		event("6003", "Updated", []string{"hireDate"}, map[string]any{"hireDate": "2027-02-30"}))
	add(malformed{name: "webhook/one bad event among good", r: signedWebhook(mixedHook, now.Add(-90*time.Second))})
	big := webhookBody(event("4242", "Created", nil, map[string]any{"department": strings.Repeat("d", 70<<10)}))
	add(malformed{name: "webhook/oversize", r: signedWebhook(big, now)})
	add(malformed{name: "webhook/GET", r: req{method: http.MethodGet, path: "/hris/webhook", noAuth: true}})
	return cases
}

// TestMalformedInputStartsNothing sends every malformed request to a fresh
// server: each is answered 4xx (or, for bulk rows, reported 4xx row by
// row) with a JSON error naming a field, and the starter sees no call.
func TestMalformedInputStartsNothing(t *testing.T) {
	cases := malformedCases(t)
	require.GreaterOrEqual(t, len(cases), 200, "the table must hold at least 200 malformed payloads")
	names := map[string]bool{}
	for _, c := range cases {
		require.False(t, names[c.name], "duplicate case name %q", c.name)
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			h := testServer(f, nil).Handler()
			check := func(r req) {
				w := do(t, h, r)
				body := w.Body.String()
				if c.rowLevel && w.Code == http.StatusOK {
					lines := ndjsonLines(t, body)
					require.NotEmpty(t, lines)
					rows := lines[:len(lines)-1]
					require.NotEmpty(t, rows, "no row results: %s", body)
					for _, l := range rows {
						require.Equal(t, OutcomeInvalid, l["outcome"], "row %v", l)
						status := int(l["status"].(float64))
						require.True(t, status >= 400 && status < 500, "row status %d", status)
						require.NotEmpty(t, l["field"], "row error names no field: %v", l)
						require.NotEmpty(t, l["error"])
					}
					sum := lines[len(lines)-1]["summary"].(map[string]any)
					require.EqualValues(t, 0, sum["started"])
				} else {
					require.True(t, w.Code >= 400 && w.Code < 500, "status %d, body %s", w.Code, body)
					var e map[string]any
					require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e), "error body is not JSON: %q", body)
					require.NotEmpty(t, e["error"], "no error message: %s", body)
					if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
						require.NotEmpty(t, e["field"], "error names no field: %s", body)
					}
				}
			}
			check(c.r)
			if c.then != nil {
				check(*c.then)
			}
			starts, signals := f.calls()
			require.Zero(t, starts, "malformed input started a joiner")
			require.Zero(t, signals, "malformed input signalled a joiner")
		})
	}
}
