package dcoslogin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"
)

func newKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return k, string(p)
}

func doc(uid, key, endpoint string) []byte {
	b, _ := json.Marshal(map[string]string{"scheme": "RS256", "uid": uid, "private_key": key, "login_endpoint": endpoint})
	return b
}

// fakeIAM checks the login token as DC/OS IAM does (signed by the
// account's key, uid matching, not expired) and answers with a token
// that expires in life.
type fakeIAM struct {
	mu     sync.Mutex
	pub    *rsa.PublicKey
	uid    string
	life   time.Duration
	logins int
	down   bool
}

func (f *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var req struct{ UID, Token string }
	if r.Method != http.MethodPost || r.URL.Path != "/acs/api/v1/auth/login" || json.NewDecoder(r.Body).Decode(&req) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	tok, err := jwt.ParseSigned(req.Token)
	var c struct {
		UID string           `json:"uid"`
		Exp *jwt.NumericDate `json:"exp"`
	}
	if err != nil || tok.Headers[0].Algorithm != "RS256" || tok.Claims(f.pub, &c) != nil || c.UID != f.uid || req.UID != f.uid ||
		c.Exp == nil || !time.Now().Before(c.Exp.Time()) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"title":"Bad request","description":"Login token invalid"}`))
		return
	}
	f.logins++
	_ = json.NewEncoder(w).Encode(map[string]string{"token": fmt.Sprintf("iam-token-%d.%s.x", f.logins, expPart(time.Now().Add(f.life)))})
}

// expPart is a JWT payload with only exp (the scheduler reads exp
// without verifying).
func expPart(t time.Time) string {
	b, _ := json.Marshal(map[string]int64{"exp": t.Unix()})
	return strings.TrimRight(jose.JSONWebKey{}.KeyID+b64url(b), "=")
}

func b64url(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := 0
		for j := 0; j < 3; j++ {
			n <<= 8
			if i+j < len(b) {
				n |= uint32(b[i+j])
				k++
			}
		}
		for j := 0; j <= k; j++ {
			sb.WriteByte(enc[(n>>(18-6*uint(j)))&63])
		}
	}
	return sb.String()
}

func TestParse(t *testing.T) {
	_, pemKey := newKey(t)
	a, err := Parse(doc("consul-principal", pemKey, "https://master.mesos/acs/api/v1/auth/login"))
	if err != nil || a.UID != "consul-principal" || a.Key == nil {
		t.Fatalf("Parse: %v, %v", a, err)
	}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v", a, a, a)} {
		if strings.Contains(s, "PRIVATE") || strings.Contains(s, a.Key.D.String()) {
			t.Errorf("formatting shows the key: %s", s)
		}
	}
	for _, tc := range []struct {
		doc  []byte
		want string
	}{
		{[]byte("nope"), "not JSON"},
		{doc("", pemKey, "https://m/l"), "no uid"},
		{doc("u", "not pem", "https://m/l"), "not PEM"},
		{doc("u", pemKey, "master.mesos/login"), "not an http(s) URL"},
		{[]byte(`{"scheme":"HS256","uid":"u","private_key":"k","login_endpoint":"https://m/l"}`), "only RS256"},
	} {
		if _, err := Parse(tc.doc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40s: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestLoginCachesRenewsAndReportsFailures(t *testing.T) {
	key, pemKey := newKey(t)
	iam := &fakeIAM{pub: &key.PublicKey, uid: "consul-principal", life: 5 * 24 * time.Hour}
	srv := httptest.NewServer(iam)
	defer srv.Close()
	a, err := Parse(doc("consul-principal", pemKey, srv.URL+"/acs/api/v1/auth/login"))
	if err != nil {
		t.Fatal(err)
	}
	l := New(a, "/nonexistent/ca-bundle.crt")
	now := time.Now()
	l.Now = func() time.Time { return now }
	ctx := context.Background()
	h1, err := l.Header(ctx)
	if err != nil || !strings.HasPrefix(h1, "token=iam-token-1.") {
		t.Fatalf("first Header: %q, %v", h1, err)
	}
	if h, _ := l.Header(ctx); h != h1 || l.Logins() != 1 {
		t.Fatalf("second Header: %q after %d logins, want the cached token", h, l.Logins())
	}
	// An hour before expiry it logs in again.
	now = now.Add(5*24*time.Hour - 59*time.Minute)
	if h, err := l.Header(ctx); err != nil || !strings.HasPrefix(h, "token=iam-token-2.") {
		t.Fatalf("Header near expiry: %q, %v", h, err)
	}
	// A 401 from the master drops the token.
	l.Refused()
	if h, err := l.Header(ctx); err != nil || !strings.HasPrefix(h, "token=iam-token-3.") {
		t.Fatalf("Header after Refused: %q, %v", h, err)
	}
	// IAM refuses a key it does not know: a *Error naming the account and
	// IAM's answer.
	other, otherPEM := newKey(t)
	_ = other
	b, _ := Parse(doc("consul-principal", otherPEM, srv.URL+"/acs/api/v1/auth/login"))
	_, err = New(b, "").Header(ctx)
	var le *Error
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Login token invalid") ||
		!strings.Contains(err.Error(), "consul-principal") {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("the error shows the key: %v", err)
	}
	iam.mu.Lock()
	iam.down = true
	iam.mu.Unlock()
	l.Refused()
	if _, err := l.Header(ctx); !errors.As(err, &le) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("IAM down: %v", err)
	}
}

func TestRenewAt(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := func(exp time.Time) string { return "h." + expPart(exp) + ".s" }
	if got := renewAt(tok(now.Add(5*24*time.Hour)), now); !got.Equal(now.Add(5*24*time.Hour - time.Hour)) {
		t.Errorf("5 days: renew at %v", got.Sub(now))
	}
	if got := renewAt(tok(now.Add(time.Hour)), now); !got.Equal(now.Add(30 * time.Minute)) {
		t.Errorf("1 hour: renew at %v", got.Sub(now))
	}
	if got := renewAt("opaque", now); !got.Equal(now.Add(defaultLife)) {
		t.Errorf("opaque: renew at %v", got.Sub(now))
	}
}
