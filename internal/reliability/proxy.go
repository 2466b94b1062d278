package reliability

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Protocol is what a Proxy understands of the bytes it relays: enough to cut
// the stream into requests and responses, so that it can act on one request
// (let it through, then fail before its response is delivered).
type Protocol int

const (
	// LDAP frames BER LDAPMessages and pairs responses by message ID.
	LDAP Protocol = iota
	// HTTP frames HTTP/1.1 requests and responses (one at a time per
	// connection, which is how Go's client uses a keep-alive connection).
	HTTP
)

// String names the protocol.
func (p Protocol) String() string {
	if p == LDAP {
		return "ldap"
	}
	return "http"
}

// Request is what a trigger sees of one request crossing the proxy.
type Request struct {
	// Op is the LDAP operation ("add", "modify", "delete", "modrdn",
	// "search", "bind", "extended", ...) or the HTTP method.
	Op string
	// Target is the LDAP entry DN or the HTTP request path.
	Target string
	// Body is the LDAP message's raw BER, or the HTTP request body.
	Body []byte
	// Header is the HTTP request's header (nil for LDAP).
	Header http.Header
}

// Trigger is a one-shot fault armed on a proxy: the first request that
// Match accepts is forwarded to the server; when the server's response to
// it arrives, Action runs (e.g. kill -9 of the worker), and the response is
// dropped with the connection. The external write has happened; the caller
// never learns it did.
type Trigger struct {
	Name   string
	Match  func(Request) bool
	Action func()

	fired   chan struct{}
	once    sync.Once
	Request Request // the request that fired it (valid after Fired closes)
	At      time.Time
}

// Fired is closed once the trigger has acted.
func (t *Trigger) Fired() <-chan struct{} { return t.fired }

// Proxy is a fault-injecting TCP proxy in front of one server. Faults:
// added latency per request, an outage (every connection refused and the
// open ones cut), dropping the open connections once, and one-shot
// triggers that act after a matching request reached the server.
//
// Who can reach it: it listens on loopback only, on a port chosen by the
// test, in front of a private stack's server; the suite starts and stops
// it. Nothing in the product starts one.
type Proxy struct {
	Name     string
	Protocol Protocol
	Upstream string

	ln net.Listener

	mu       sync.Mutex
	latency  time.Duration
	down     bool
	conns    map[net.Conn]struct{}
	triggers []*Trigger
	closed   bool
	stats    ProxyStats
}

// ProxyStats counts what crossed a proxy.
type ProxyStats struct {
	Conns, Requests, Refused, Dropped, Fired int
	// InFlight is how many requests the proxy has received and not yet
	// answered (what a kill at this moment interrupts).
	InFlight int
}

// NewProxy listens on a free loopback port and relays to upstream.
func NewProxy(name string, proto Protocol, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Name: name, Protocol: proto, Upstream: upstream, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every request by d before it is forwarded.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// SetDown starts (true) or ends (false) an outage: while down, new
// connections are closed at once and the open ones are cut.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.DropAll()
	}
}

// DropAll cuts every open connection (both sides), once.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.stats.Dropped += len(conns)
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Arm adds a one-shot trigger and returns it.
func (p *Proxy) Arm(name string, match func(Request) bool, action func()) *Trigger {
	t := &Trigger{Name: name, Match: match, Action: action, fired: make(chan struct{})}
	p.mu.Lock()
	p.triggers = append(p.triggers, t)
	p.mu.Unlock()
	return t
}

// Disarm removes triggers that have not fired.
func (p *Proxy) Disarm() {
	p.mu.Lock()
	p.triggers = nil
	p.mu.Unlock()
}

// Stats returns the counters so far.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops listening and cuts every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.DropAll()
	return err
}

// claim returns the first armed trigger matching r and removes it, so a
// trigger fires for exactly one request.
func (p *Proxy) claim(r Request) *Trigger {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	for i, t := range p.triggers {
		if t.Match(r) {
			t.Request = r
			p.triggers = append(p.triggers[:i:i], p.triggers[i+1:]...)
			return t
		}
	}
	return nil
}

func (p *Proxy) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency
}

func (p *Proxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

func (p *Proxy) inflight(d int) {
	p.mu.Lock()
	p.stats.InFlight += d
	p.mu.Unlock()
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.down || p.closed
		if refuse {
			p.stats.Refused++
		} else {
			p.stats.Conns++
		}
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		go p.relay(c)
	}
}

// relay runs one client connection: a goroutine per direction, cut into
// messages by the protocol. pending pairs a triggered request with its
// response: for LDAP by message ID, for HTTP by order.
func (p *Proxy) relay(client net.Conn) {
	up, err := net.DialTimeout("tcp", p.Upstream, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.track(client, true)
	p.track(up, true)
	defer func() {
		_ = client.Close()
		_ = up.Close()
		p.track(client, false)
		p.track(up, false)
	}()
	s := &session{p: p, client: client, up: up, ldapPending: map[int64]*Trigger{}, ldapOpen: map[int64]bool{}, httpQueue: make(chan httpPending, 64)}
	done := make(chan struct{}, 2)
	go func() { s.upstream(); done <- struct{}{} }()
	go func() { s.downstream(); done <- struct{}{} }()
	<-done
	_ = client.Close()
	_ = up.Close()
	<-done
	s.mu.Lock()
	open := len(s.ldapOpen) + s.httpOpen
	s.ldapOpen, s.httpOpen = map[int64]bool{}, 0
	s.mu.Unlock()
	p.inflight(-open)
}

type httpPending struct {
	req *http.Request
	t   *Trigger
}

type session struct {
	p          *Proxy
	client, up net.Conn

	mu          sync.Mutex
	ldapPending map[int64]*Trigger
	ldapOpen    map[int64]bool // requests awaiting their (final) response
	httpOpen    int
	httpQueue   chan httpPending
}

func (s *session) open(id int64, op string) {
	if op == "abandon" || op == "unbind" {
		return
	}
	s.mu.Lock()
	s.ldapOpen[id] = true
	s.mu.Unlock()
	s.p.inflight(1)
}

func (s *session) answered(id int64, op string) {
	if op == "search-entry" || op == "search-reference" || op == "intermediate" {
		return
	}
	s.mu.Lock()
	was := s.ldapOpen[id]
	delete(s.ldapOpen, id)
	s.mu.Unlock()
	if was {
		s.p.inflight(-1)
	}
}

func (s *session) httpDelta(d int) {
	s.mu.Lock()
	s.httpOpen += d
	s.mu.Unlock()
	s.p.inflight(d)
}

// upstream relays client → server, one request at a time.
func (s *session) upstream() {
	defer s.up.Close()
	defer close(s.httpQueue)
	br := bufio.NewReader(s.client)
	for {
		switch s.p.Protocol {
		case LDAP:
			raw, err := readBER(br)
			if err != nil {
				return
			}
			id, req := parseLDAP(raw)
			// In flight from the moment the worker sent it: a kill
			// during the added latency interrupts the activity too.
			s.open(id, req.Op)
			if d := s.p.delay(); d > 0 {
				time.Sleep(d)
			}
			if s.p.isDown() {
				return
			}
			if t := s.p.claim(req); t != nil {
				s.mu.Lock()
				s.ldapPending[id] = t
				s.mu.Unlock()
			}
			if _, err := s.up.Write(raw); err != nil {
				return
			}
		case HTTP:
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			s.httpDelta(1)
			if d := s.p.delay(); d > 0 {
				time.Sleep(d)
			}
			if s.p.isDown() {
				return
			}
			t := s.p.claim(Request{Op: req.Method, Target: req.URL.Path, Body: body, Header: req.Header})
			// The queue must be fed before the request leaves, or the
			// response could be read before its request is known.
			s.httpQueue <- httpPending{req: req, t: t}
			if err := req.Write(s.up); err != nil {
				return
			}
		}
	}
}

// downstream relays server → client; a response to a triggered request
// runs the trigger's action and cuts the connection instead.
func (s *session) downstream() {
	defer s.client.Close()
	br := bufio.NewReader(s.up)
	for {
		switch s.p.Protocol {
		case LDAP:
			raw, err := readBER(br)
			if err != nil {
				return
			}
			id, resp := parseLDAP(raw)
			s.mu.Lock()
			t := s.ldapPending[id]
			delete(s.ldapPending, id)
			s.mu.Unlock()
			if t != nil {
				s.fire(t)
				return
			}
			// Answered as it is relayed (before the write, so a client
			// that has its answer never still sees it in flight).
			s.answered(id, resp.Op)
			if _, err := s.client.Write(raw); err != nil {
				return
			}
		case HTTP:
			pend, ok := <-s.httpQueue
			if !ok {
				return
			}
			resp, err := http.ReadResponse(br, pend.req)
			if err != nil {
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return
			}
			if pend.t != nil {
				s.fire(pend.t)
				return
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.TransferEncoding = nil
			s.httpDelta(-1)
			if err := resp.Write(s.client); err != nil {
				return
			}
		}
	}
}

func (s *session) fire(t *Trigger) {
	t.once.Do(func() {
		t.At = time.Now()
		if t.Action != nil {
			t.Action()
		}
		s.p.mu.Lock()
		s.p.stats.Fired++
		s.p.mu.Unlock()
		close(t.fired)
	})
}

// readBER reads one BER TLV (an LDAPMessage) and returns its raw bytes.
func readBER(r *bufio.Reader) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	head := []byte{tag, first}
	length := int(first)
	if first&0x80 != 0 {
		n := int(first & 0x7f)
		if n == 0 || n > 4 {
			return nil, fmt.Errorf("ldap: unsupported BER length form 0x%x", first)
		}
		length = 0
		for i := 0; i < n; i++ {
			b, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			head = append(head, b)
			length = length<<8 | int(b)
		}
	}
	if length > 64<<20 {
		return nil, errors.New("ldap: message larger than 64 MiB")
	}
	out := make([]byte, len(head)+length)
	copy(out, head)
	if _, err := io.ReadFull(r, out[len(head):]); err != nil {
		return nil, err
	}
	return out, nil
}

// ldapOps names the RFC 4511 protocolOp application tags.
var ldapOps = map[ber.Tag]string{
	0: "bind", 1: "bind-response", 2: "unbind", 3: "search", 4: "search-entry", 5: "search-done",
	6: "modify", 7: "modify-response", 8: "add", 9: "add-response", 10: "delete", 11: "delete-response",
	12: "modrdn", 13: "modrdn-response", 14: "compare", 15: "compare-response", 16: "abandon",
	19: "search-reference", 23: "extended", 24: "extended-response", 25: "intermediate",
}

// parseLDAP returns the message ID and the operation and DN of an
// LDAPMessage (ID -1 when it cannot be parsed).
func parseLDAP(raw []byte) (int64, Request) {
	pkt, err := ber.DecodePacketErr(raw)
	if err != nil || len(pkt.Children) < 2 {
		return -1, Request{Op: "unparsed", Body: raw}
	}
	id, _ := pkt.Children[0].Value.(int64)
	op := pkt.Children[1]
	r := Request{Op: ldapOps[op.Tag], Body: raw}
	if r.Op == "" {
		r.Op = fmt.Sprintf("op%d", op.Tag)
	}
	switch r.Op {
	case "delete":
		if op.Data != nil {
			r.Target = op.Data.String()
		}
	case "add", "modify", "modrdn", "search", "compare":
		if len(op.Children) > 0 {
			r.Target = strings.TrimSpace(fmt.Sprint(op.Children[0].Value))
		}
	}
	return id, r
}
