package scheduler

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"

	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/dcoslogin"
)

// A master that requires framework authentication: with the principal's
// secret (from a file) the scheduler subscribes and deploys; with a wrong
// one it keeps running, reports the 401 in /v1/health and subscribes as
// soon as the secret is right (the next scheduler start).
func TestSimFrameworkAuthentication(t *testing.T) {
	secret := "s3cret-" + fmt.Sprint(time.Now().UnixNano())
	h := startSim(t, 2, func(o *mesossim.Options) {
		o.FrameworkCredentials = map[string]string{"consul-principal": secret}
	})
	h.cfg.ServerCount = 1
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfg.FrameworkSecretFile = file
	h.start()
	h.eventually("the 401 in the health view", 30*time.Second, func(v api.View) error {
		if v.Subscribed {
			return errors.New("subscribed with a wrong secret")
		}
		if !strings.Contains(v.Err, "refused the credentials") || !strings.Contains(v.Err, "consul-principal") {
			return fmt.Errorf("error %q", v.Err)
		}
		return nil
	})
	code, body := h.get("/v1/health")
	var health map[string]any
	_ = json.Unmarshal(body, &health)
	if code != 500 || !strings.Contains(fmt.Sprint(health["error"]), "401") {
		t.Fatalf("/v1/health: %d %s", code, body)
	}
	if strings.Contains(string(body), secret) || strings.Contains(string(body), "wrong") {
		t.Fatalf("/v1/health shows a secret: %s", body)
	}
	select {
	case err := <-h.done:
		t.Fatalf("the scheduler stopped on a 401: %v", err)
	default:
	}
	h.stop()

	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.eventually("1 server and 1 client running", 60*time.Second, deployed(1, 1))
	if v := h.sched.Snapshot(); v.Err != "" {
		t.Fatalf("health error after subscribing: %q", v.Err)
	}
}

func TestAuthFailureMessages(t *testing.T) {
	e401 := fmt.Errorf("SUBSCRIBE: %w", apierrors.CodeNotAuthenticated.Error("401 Unauthorized."))
	if got := authFailure(e401, "p", false); !strings.Contains(got, "no secret is configured") || !strings.Contains(got, `"p"`) {
		t.Errorf("no secret sent: %q", got)
	}
	if got := authFailure(e401, "p", true); !strings.Contains(got, "refused the credentials") {
		t.Errorf("secret sent: %q", got)
	}
	loginErr := &url.Error{Op: "Post", URL: "http://m/api/v1/scheduler", Err: &dcoslogin.Error{Account: "service account p", Err: errors.New("503")}}
	if got := authFailure(fmt.Errorf("SUBSCRIBE: %w", loginErr), "p", true); !strings.Contains(got, "DC/OS login of service account p: 503") {
		t.Errorf("login failure: %q", got)
	}
	for _, err := range []error{errors.New("connection refused"), apierrors.CodeMesosUnavailable.Error("")} {
		if got := authFailure(err, "p", true); got != "" {
			t.Errorf("%v: %q, want no auth failure", err, got)
		}
	}
}

// DC/OS tokens on the scheduler's own API when DCOS_JWKS_URL is set:
// a valid one works on a mutating route like the operator token, an
// expired one gets 401, and the operator token keeps working.
func TestSimDCOSTokenOnMutatingRoutes(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "iam", Algorithm: "RS256", Use: "sig"}}}
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(set) }))
	defer iam.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "iam"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(exp time.Time) string {
		s, err := jwt.Signed(signer).Claims(map[string]any{"uid": "bootstrapuser", "exp": exp.Unix()}).CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	h := startSim(t, 1)
	h.cfg.ServerCount, h.cfg.ClientsEnabled = 1, false
	h.cfg.DCOSJWKSURL = iam.URL + "/acs/api/v1/auth/jwks"
	h.start()
	h.eventually("1 server running", 60*time.Second, deployed(1, 0))
	post := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, h.apiURL+"/v1/pod/consul-server-0/restart", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("token=" + token(time.Now().Add(-time.Minute))); code != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Fatalf("expired DC/OS token: %d %s", code, body)
	}
	if code, body := post("token=" + token(time.Now().Add(time.Hour))); code != http.StatusOK {
		t.Fatalf("valid DC/OS token: %d %s", code, body)
	}
	h.eventually("the server restarted and running again", 60*time.Second, deployed(1, 0))
	if code, body := post("Bearer " + h.sched.secrets.Get().OperatorToken); code == http.StatusUnauthorized {
		t.Fatalf("operator token: %d %s", code, body)
	}
}

// A DC/OS service account document as the framework secret: the scheduler
// logs in to (a stand-in for) DC/OS IAM with the account's key and
// subscribes with "Authorization: token=<IAM's token>" as the account's
// principal; when the master refuses the token it logs in again.
func TestSimServiceAccountLogin(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const uid = "consul-principal"
	var mu sync.Mutex
	issued := map[string]bool{}
	logins := 0
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ UID, Token string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		tok, err := jwt.ParseSigned(req.Token)
		var c struct {
			UID string `json:"uid"`
		}
		if err != nil || tok.Claims(&key.PublicKey, &c) != nil || c.UID != uid || req.UID != uid {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		logins++
		t := fmt.Sprintf("iam-%d-%d", logins, time.Now().UnixNano())
		issued[t] = true
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"token": t})
	}))
	defer iam.Close()
	h := startSim(t, 1, func(o *mesossim.Options) {
		o.FrameworkTokens = func(tok string) (string, bool) {
			mu.Lock()
			defer mu.Unlock()
			return uid, issued[tok]
		}
	})
	h.cfg.ServerCount, h.cfg.ClientsEnabled = 1, false
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	sa, _ := json.Marshal(map[string]string{"scheme": "RS256", "uid": uid, "private_key": string(pemKey),
		"login_endpoint": iam.URL + "/acs/api/v1/auth/login"})
	file := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(file, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfg.ServiceAccountSecret, h.cfg.ServiceAccountCredential = "consul/sa", file
	h.start()
	h.eventually("1 server running", 60*time.Second, deployed(1, 0))

	// The master stops accepting the tokens issued so far (as after an
	// IAM key rotation): the scheduler gets 401, logs in again and
	// subscribes with the new token.
	mu.Lock()
	issued = map[string]bool{}
	before := logins
	mu.Unlock()
	if err := h.cluster.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	h.eventually("subscribed again with a new login", 60*time.Second, func(v api.View) error {
		mu.Lock()
		n := logins
		mu.Unlock()
		if !v.Subscribed || n <= before {
			return fmt.Errorf("subscribed %v, logins %d (before %d), error %q", v.Subscribed, n, before, v.Err)
		}
		return nil
	})
}
