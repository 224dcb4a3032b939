package secrets

import (
	"encoding/json"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Holder holds the current secrets for concurrent readers (API handlers)
// and the one writer (the scheduler, after a rotation is stored).
type Holder struct {
	mu sync.RWMutex
	s  Secrets
	// lost says why the secrets held are only interim ones (the stored
	// secrets were lost with the scheduler's state and are being
	// recovered from a server's copy); "" when they are the service's.
	lost string
}

// Lost is why the secrets held are interim ones ("" when they are not).
func (h *Holder) Lost() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.lost
}

// SetLost marks the secrets held as interim, with why.
func (h *Holder) SetLost(why string) {
	h.mu.Lock()
	h.lost = why
	h.mu.Unlock()
}

// Recover replaces the interim secrets by the recovered ones (after they
// are stored) and ends the lost state.
func (h *Holder) Recover(s Secrets) {
	h.mu.Lock()
	h.s, h.lost = s, ""
	h.mu.Unlock()
}

// NewHolder returns a holder of s.
func NewHolder(s Secrets) *Holder { return &Holder{s: s} }

// Get returns the current secrets.
func (h *Holder) Get() Secrets {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.s
}

// Set replaces the secrets (after they are stored).
func (h *Holder) Set(s Secrets) {
	h.mu.Lock()
	h.s = s
	h.mu.Unlock()
}

// LiveTask says whether taskID is the current incarnation of one of the
// scheduler's records and still may be alive, and what its agent uses.
type LiveTask func(taskID string) (live bool, needs Needs)

// ExecutorHandler serves taskspec.SecretsPath: an executor presents its
// task ID and the credential from its TaskInfo.data and receives its
// task's secrets. A bad credential or a task that is not live gets 403
// with a message naming neither the token nor any secret; the answer is
// never cached.
func ExecutorHandler(h *Holder, live LiveTask) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, "only GET is allowed here")
			return
		}
		id := r.URL.Query().Get("task_id")
		tok := bearer(r)
		if why := h.Lost(); why != "" {
			// Nothing interim is handed out: it would not work with the
			// running cluster. A server presents its volume's copy.
			writeError(w, taskspec.SecretsLost, "the scheduler's secrets are lost and being recovered from a server's copy: "+why)
			return
		}
		s := h.Get()
		if id == "" || tok == "" {
			writeError(w, http.StatusUnauthorized, "an executor presents ?task_id= and its task credential as Authorization: Bearer")
			return
		}
		if !s.VerifyCredential(id, tok) {
			writeError(w, http.StatusForbidden, "the credential does not belong to task "+quoteID(id))
			return
		}
		ok, needs := live(id)
		if !ok {
			writeError(w, http.StatusForbidden, "task "+quoteID(id)+" is not a live task of this scheduler")
			return
		}
		out, err := s.ForTask(needs, nil, time.Now())
		if err != nil {
			// The CA's problem (expired, unreadable), never a key.
			writeError(w, http.StatusInternalServerError, "the task's TLS certificate could not be issued: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// quoteID bounds what a caller-supplied ID can put into a message.
func quoteID(id string) string {
	if len(id) > 200 {
		id = id[:200]
	}
	b, _ := json.Marshal(id)
	return string(b)
}

// OperatorHeader carries the operator token through Admin Router, which
// takes Authorization for the DC/OS token (internal/operator sends it).
const OperatorHeader = "X-Dcos-Consul-Token"

// bearer returns the token of an "Authorization: Bearer <t>" or
// "Authorization: token=<t>" header (the DC/OS CLI's form).
func bearer(r *http.Request) string {
	a := strings.TrimSpace(r.Header.Get("Authorization"))
	switch {
	case len(a) > 7 && strings.EqualFold(a[:7], "bearer "):
		return strings.TrimSpace(a[7:])
	case len(a) > 6 && strings.EqualFold(a[:6], "token="):
		return strings.TrimSpace(a[6:])
	}
	return ""
}

// RequireOperator lets reads (GET, HEAD, OPTIONS) through and answers
// every other method 401 unless it carries the operator token (as
// the OperatorHeader, "Authorization: Bearer <token>" or
// "Authorization: token=<token>"), so an
// unauthenticated caller changes nothing. exempt paths (prefixes) pass
// without a token; they authenticate their callers themselves.
func RequireOperator(h *Holder, next http.Handler, exempt ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		for _, p := range exempt {
			if strings.HasPrefix(r.URL.Path, p) {
				next.ServeHTTP(w, r)
				return
			}
		}
		tok := strings.TrimSpace(r.Header.Get(OperatorHeader))
		if tok == "" {
			tok = bearer(r)
		}
		if tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dcos-consul scheduler"`)
			writeError(w, http.StatusUnauthorized, r.Method+" "+r.URL.Path+" changes the service and needs the operator token (Authorization: Bearer <token>; dcos-consul consul commands send it, see docs/security.md)")
			return
		}
		if !h.Get().VerifyOperator(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dcos-consul scheduler", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, r.Method+" "+r.URL.Path+": the token is not this service's operator token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ManagementTokenHandler serves the Consul ACL management token to the
// operator, and to nobody else: a GET that needs the operator token.
func ManagementTokenHandler(h *Holder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, "only GET is allowed here")
			return
		}
		tok := strings.TrimSpace(r.Header.Get(OperatorHeader))
		if tok == "" {
			tok = bearer(r)
		}
		s := h.Get()
		if !s.VerifyOperator(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dcos-consul scheduler"`)
			writeError(w, http.StatusUnauthorized, "the ACL management token is given only with the operator token")
			return
		}
		if why := h.Lost(); why != "" {
			writeError(w, http.StatusConflict, "the ACL management token is not known yet: "+why)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"secret_id": s.ManagementToken})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"code": code, "error": http.StatusText(code), "message": msg})
}

// CAPath serves the CA certificate Consul's TLS verifies against (public).
const CAPath = "/v1/tls/ca"

// CAHandler serves the active CA certificate as PEM, to anyone: it is
// public, and a client needs it to verify the Consul servers' HTTPS API.
// 404 when TLS is off.
func CAHandler(h *Holder, tlsOn func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "only GET is allowed here")
			return
		}
		ca := h.Get().ActiveCA()
		if !tlsOn() || ca.CertPEM == "" {
			writeError(w, http.StatusNotFound, "TLS is off for this service (security.tls.enabled)")
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write([]byte(ca.CertPEM))
	}
}
