package mesossim

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// schedulerRealm is the realm of a real master's HTTP framework
// authenticator (--authenticate_http_frameworks
// --http_framework_authenticators=basic).
const schedulerRealm = "mesos-master-scheduler"

// authenticateFramework checks HTTP Basic against the configured
// credentials as a real master does: no credentials or wrong ones get 401
// with WWW-Authenticate and the body "401 Unauthorized." (Mesos 1.12.0,
// checked with curl), before the body is even read. It returns the
// authenticated principal; "" with ok when authentication is off.
func (m *master) authenticateFramework(w http.ResponseWriter, r *http.Request) (principal string, ok bool) {
	creds, tokens := m.cl.opts.FrameworkCredentials, m.cl.opts.FrameworkTokens
	if len(creds) == 0 && tokens == nil {
		return "", true
	}
	if a := r.Header.Get("Authorization"); tokens != nil && strings.HasPrefix(a, "token=") {
		if p, ok := tokens(strings.TrimPrefix(a, "token=")); ok {
			return p, true
		}
		m.log.Info("framework authentication failed: token refused")
		w.Header().Set("WWW-Authenticate", `Basic realm="`+schedulerRealm+`"`)
		textError(w, http.StatusUnauthorized, "401 Unauthorized.")
		return "", false
	}
	user, pass, has := r.BasicAuth()
	want, known := creds[user]
	if !has || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		m.log.Info("framework authentication failed", zap.String("principal", user), zap.Bool("credentials_sent", has))
		w.Header().Set("WWW-Authenticate", `Basic realm="`+schedulerRealm+`"`)
		textError(w, http.StatusUnauthorized, "401 Unauthorized.")
		return "", false
	}
	return user, true
}

// principalMismatch: an authenticated SUBSCRIBE whose FrameworkInfo names
// another principal is a 400 on a real master (M/http.cpp).
func principalMismatch(authenticated string, call *scheduler.Call) string {
	if authenticated == "" || call.GetType() != scheduler.Call_SUBSCRIBE {
		return ""
	}
	p := call.GetSubscribe().GetFrameworkInfo().GetPrincipal()
	if call.GetSubscribe().GetFrameworkInfo().Principal == nil || p == authenticated {
		return ""
	}
	return fmt.Sprintf("Authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", authenticated, p)
}
