package scheduler

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"

	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
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
