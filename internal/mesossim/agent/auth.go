package agent

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// executorRealm is the realm of a real agent's executor authenticator.
const executorRealm = "mesos-agent-executor"

func bearerToken(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// executorTokenValid: authentication is off, or the request carries the
// token of one of this agent's executors.
func (a *Agent) executorTokenValid(r *http.Request) bool {
	if !a.cfg.ExecutorAuthentication {
		return true
	}
	tok := bearerToken(r)
	if tok == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.frameworks {
		for _, e := range f.executors {
			if subtle.ConstantTimeCompare([]byte(tok), []byte(e.authToken)) == 1 {
				return true
			}
		}
	}
	return false
}
