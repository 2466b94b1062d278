package hris

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSignKnownAnswer pins the signature scheme to a vector computed outside
// this package (Python: hmac.new(key, body + ts, sha256).hexdigest()), so a
// change to Sign cannot pass just because Verify changed with it.
func TestSignKnownAnswer(t *testing.T) {
	body := []byte(`{"employees":[{"id":"7","action":"Created"}]}`)
	sig, ts := Sign([]byte("dev-webhook-secret"), body, time.Unix(1700000000, 0))
	require.Equal(t, "1700000000", ts)
	require.Equal(t, "1404d117bcae6f68d387a26de417eb1c6bb641e0f264c336cbca6d1550792204", sig)
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret-webhook-key")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"employees":[{"id":"1000","timestamp":"2027-01-15T08:00:00+0000","action":"Created","changedFields":["firstName"],"fields":{"firstName":"José","hireDate":"2027-02-01"}}]}`)
	sign := func(b []byte, at time.Time) (string, string) { return Sign(secret, b, at) }

	type tc struct {
		name    string
		body    []byte
		headers func() (sig, ts string)
		secret  []byte
		wantErr []error
	}
	cases := []tc{
		{name: "valid", body: body, headers: func() (string, string) { return sign(body, now) }},
		{name: "valid uppercase hex and spaces", body: body, headers: func() (string, string) {
			s, ts := sign(body, now)
			return " " + strings.ToUpper(s) + " ", ts + " "
		}},
		{name: "valid at edge of skew", body: body, headers: func() (string, string) { return sign(body, now.Add(-DefaultMaxSkew)) }},
		{name: "wrong secret", body: body, secret: []byte("another-key"), headers: func() (string, string) { return sign(body, now) },
			wantErr: []error{ErrBadSignature}},
		{name: "tampered body", body: []byte(strings.Replace(string(body), "1000", "1001", 1)),
			headers: func() (string, string) { return sign(body, now) }, wantErr: []error{ErrBadSignature}},
		{name: "tampered timestamp", body: body, headers: func() (string, string) {
			s, _ := sign(body, now)
			return s, fmt.Sprint(now.Unix() + 1)
		}, wantErr: []error{ErrBadSignature}},
		{name: "stale", body: body, headers: func() (string, string) { return sign(body, now.Add(-DefaultMaxSkew-time.Second)) },
			wantErr: []error{ErrStale}},
		{name: "from the future", body: body, headers: func() (string, string) { return sign(body, now.Add(DefaultMaxSkew+time.Second)) },
			wantErr: []error{ErrStale}},
		{name: "missing signature", body: body, headers: func() (string, string) { _, ts := sign(body, now); return "", ts },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "prefixed signature", body: body, headers: func() (string, string) { s, ts := sign(body, now); return "sha256=" + s, ts },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "short signature", body: body, headers: func() (string, string) { s, ts := sign(body, now); return s[:62], ts },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "non-hex signature", body: body, headers: func() (string, string) { _, ts := sign(body, now); return strings.Repeat("zz", 32), ts },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "missing timestamp", body: body, headers: func() (string, string) { s, _ := sign(body, now); return s, "" },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "RFC 3339 timestamp", body: body, headers: func() (string, string) { s, _ := sign(body, now); return s, now.Format(time.RFC3339) },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "negative timestamp", body: body, headers: func() (string, string) { s, _ := sign(body, now); return s, "-1" },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "huge timestamp", body: body, headers: func() (string, string) { s, _ := sign(body, now); return s, strings.Repeat("9", 30) },
			wantErr: []error{ErrBadSignature, ErrMalformedHeader}},
		{name: "signed garbage", body: []byte(`not json`), headers: func() (string, string) { return sign([]byte(`not json`), now) },
			wantErr: []error{ErrMalformedPayload}},
		{name: "no secret configured", body: body, secret: []byte{}, headers: func() (string, string) { return Sign(nil, body, now) },
			wantErr: []error{ErrNoSecret}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &Verifier{Secret: secret, Now: func() time.Time { return now }, Seen: NewMemoryReplayCache(10)}
			if c.secret != nil {
				v.Secret = c.secret
			}
			sig, ts := c.headers()
			events, err := v.Verify(c.body, sig, ts)
			if len(c.wantErr) == 0 {
				require.NoError(t, err)
				require.Len(t, events, 1)
				require.Equal(t, WebhookEvent{
					EmployeeID:    "1000",
					Action:        ActionCreated,
					ChangedFields: []string{"firstName"},
					Fields:        map[string]string{"firstName": "José", "hireDate": "2027-02-01"},
					Timestamp:     time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC),
				}, events[0])
				return
			}
			require.Error(t, err)
			require.Nil(t, events)
			for _, want := range c.wantErr {
				require.ErrorIs(t, err, want)
			}
			// Nothing the verifier refuses may leak the secret.
			require.NotContains(t, err.Error(), string(secret))
		})
	}
}

func TestVerifyReplay(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_800_000_000, 0)
	clock := now
	v := &Verifier{Secret: secret, Now: func() time.Time { return clock }, Seen: NewMemoryReplayCache(100)}
	body := []byte(`{"employees":[{"id":"5","action":"Updated","changedFields":["status"],"fields":{"status":"Inactive"}}]}`)
	sig, ts := Sign(secret, body, now)

	_, err := v.Verify(body, sig, ts)
	require.NoError(t, err)
	_, err = v.Verify(body, sig, ts)
	require.ErrorIs(t, err, ErrReplayed)

	// A re-signed retry of the same payload (new timestamp) is a new delivery.
	sig2, ts2 := Sign(secret, body, now.Add(time.Second))
	_, err = v.Verify(body, sig2, ts2)
	require.NoError(t, err)

	// Once the window has passed, the old delivery is stale rather than
	// replayed, and the cache may forget it.
	clock = now.Add(DefaultMaxSkew + 2*time.Second)
	_, err = v.Verify(body, sig, ts)
	require.ErrorIs(t, err, ErrStale)
}

func TestVerifyConcurrentReplayAcceptsOnce(t *testing.T) {
	secret := []byte("k")
	v := NewVerifier(secret)
	body := []byte(`{"employees":[{"id":"5","action":"Deleted"}]}`)
	sig, ts := Sign(secret, body, time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, replayed := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(body, sig, ts)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, ErrReplayed):
				replayed++
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, accepted)
	require.Equal(t, 15, replayed)
}

func TestParseWebhook(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		want    []WebhookEvent
		wantErr string
	}{
		{
			name: "BambooHR documented example",
			body: `{"employees":[{"action":"Updated","changedFields":["First Name"],"fields":{"First Name":"Bryony"},"id":"12345","timestamp":"2026-01-31T18:42:00+0000"}]}`,
			want: []WebhookEvent{{EmployeeID: "12345", Action: ActionUpdated, ChangedFields: []string{"First Name"},
				Fields: map[string]string{"First Name": "Bryony"}, Timestamp: time.Date(2026, 1, 31, 18, 42, 0, 0, time.UTC)}},
		},
		{
			name: "PHP empty arrays, numeric id, RFC 3339",
			body: `{"employees":[{"id":42,"action":"Created","changedFields":[],"fields":[],"timestamp":"2026-01-31T18:42:00Z"}]}`,
			want: []WebhookEvent{{EmployeeID: "42", Action: ActionCreated, ChangedFields: []string{},
				Fields: map[string]string{}, Timestamp: time.Date(2026, 1, 31, 18, 42, 0, 0, time.UTC)}},
		},
		{
			name: "scalar values become strings, null becomes empty",
			body: `{"employees":[{"id":"7","action":"Updated","fields":{"n":12,"b":true,"z":null}}],"extra":1}`,
			want: []WebhookEvent{{EmployeeID: "7", Action: ActionUpdated, Fields: map[string]string{"n": "12", "b": "true", "z": ""}}},
		},
		{
			name: "two events",
			body: `{"employees":[{"id":"7","action":"Deleted"},{"id":"8","action":"Created"}]}`,
			want: []WebhookEvent{{EmployeeID: "7", Action: ActionDeleted, Fields: map[string]string{}},
				{EmployeeID: "8", Action: ActionCreated, Fields: map[string]string{}}},
		},
		{name: "not json", body: `{`, wantErr: "malformed payload"},
		{name: "no employees key", body: `{}`, wantErr: "no employees"},
		{name: "empty employees", body: `{"employees":[]}`, wantErr: "no employees"},
		{name: "employees not a list", body: `{"employees":{"1":{}}}`, wantErr: "malformed payload"},
		{name: "unknown action", body: `{"employees":[{"id":"1","action":"Exploded"}]}`, wantErr: `unknown action "Exploded"`},
		{name: "missing id", body: `{"employees":[{"action":"Created"}]}`, wantErr: "id is not"},
		{name: "id zero", body: `{"employees":[{"id":"0","action":"Created"}]}`, wantErr: "id is not"},
		{name: "id with path", body: `{"employees":[{"id":"1/../2","action":"Created"}]}`, wantErr: "id is not"},
		{name: "bad timestamp", body: `{"employees":[{"id":"1","action":"Created","timestamp":"yesterday"}]}`, wantErr: "timestamp"},
		{name: "nested field value", body: `{"employees":[{"id":"1","action":"Created","fields":{"a":{"value":"x"}}}]}`, wantErr: `field "a"`},
		{name: "non-empty list of fields", body: `{"employees":[{"id":"1","action":"Created","fields":["a"]}]}`, wantErr: "fields is a non-empty list"},
		{name: "changedFields not strings", body: `{"employees":[{"id":"1","action":"Created","changedFields":[1]}]}`, wantErr: "changedFields"},
		{name: "too many events", body: `{"employees":[` + strings.Repeat(`{"id":"1","action":"Created"},`, MaxWebhookEvents) + `{"id":"1","action":"Created"}]}`,
			wantErr: "exceed the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseWebhook([]byte(c.body))
			if c.wantErr != "" {
				require.ErrorIs(t, err, ErrMalformedPayload)
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestMemoryReplayCache(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	c := NewMemoryReplayCache(2)
	require.False(t, c.Seen("a", t0.Add(10*time.Second), t0))
	require.True(t, c.Seen("a", t0.Add(10*time.Second), t0.Add(time.Second)))
	// Expired keys are forgotten.
	require.False(t, c.Seen("a", t0.Add(30*time.Second), t0.Add(11*time.Second)))
	require.Equal(t, 1, c.Len())

	// Full: the key expiring soonest is evicted, never the newest.
	require.False(t, c.Seen("b", t0.Add(20*time.Second), t0.Add(12*time.Second)))
	require.False(t, c.Seen("c", t0.Add(40*time.Second), t0.Add(12*time.Second)))
	require.Equal(t, 2, c.Len())
	require.True(t, c.Seen("c", t0.Add(40*time.Second), t0.Add(13*time.Second)))
	require.True(t, c.Seen("a", t0.Add(40*time.Second), t0.Add(13*time.Second)))
	require.False(t, c.Seen("b", t0.Add(40*time.Second), t0.Add(13*time.Second)), "b expired soonest and was evicted")
}
