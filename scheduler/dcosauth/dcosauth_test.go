package dcosauth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"
)

var (
	keyOnce       sync.Once
	iamKey, other *rsa.PrivateKey
)

func keys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if iamKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return iamKey, other
}

// sign makes a token as DC/OS IAM does: RS256, a kid, {"uid", "exp"}.
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jwks(kid string, pub *rsa.PublicKey) *jose.JSONWebKeySet {
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
}

func TestVerify(t *testing.T) {
	iam, wrong := keys(t)
	now := time.Unix(1_800_000_000, 0)
	set := jwks("secret", &iam.PublicKey)
	valid := map[string]any{"uid": "alice", "exp": now.Add(time.Hour).Unix()}
	c, err := Verify(set, sign(t, iam, jose.RS256, "secret", valid), now)
	if err != nil || c.UID != "alice" {
		t.Fatalf("valid token: %+v, %v", c, err)
	}
	// No kid in the token: any key of the set may have signed it.
	if _, err := Verify(set, sign(t, iam, jose.RS256, "", valid), now); err != nil {
		t.Fatalf("valid token without kid: %v", err)
	}
	cases := []struct {
		name  string
		token string
		want  string
	}{
		{"expired", sign(t, iam, jose.RS256, "secret", map[string]any{"uid": "alice", "exp": now.Add(-time.Second).Unix()}), "expired"},
		{"expiring now", sign(t, iam, jose.RS256, "secret", map[string]any{"uid": "alice", "exp": now.Unix()}), "expired"},
		{"no exp", sign(t, iam, jose.RS256, "secret", map[string]any{"uid": "alice"}), "no exp"},
		{"no uid", sign(t, iam, jose.RS256, "secret", map[string]any{"exp": now.Add(time.Hour).Unix()}), "no uid"},
		{"another key, same kid", sign(t, wrong, jose.RS256, "secret", valid), "signature"},
		{"another key, no kid", sign(t, wrong, jose.RS256, "", valid), "signature"},
		{"unknown kid", sign(t, iam, jose.RS256, "other", valid), "not in DC/OS IAM's key set"},
		{"HS256 with the public key's bytes", sign(t, []byte("shared-secret-shared-secret-1234"), jose.HS256, "secret", valid), "RS256"},
		{"RS512", sign(t, iam, jose.RS512, "secret", valid), "RS256"},
		{"not a JWT", "abc.def.ghi", "not a signed JWT"},
		{"tampered payload", tamper(sign(t, iam, jose.RS256, "secret", valid)), "signature"},
	}
	for _, tc := range cases {
		if _, err := Verify(set, tc.token, now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// tamper replaces the payload with one naming another user.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := json.Marshal(map[string]any{"uid": "mallory", "exp": 1_900_000_000})
	parts[1] = strings.TrimRight(jose.JSONWebKey{}.KeyID+b64(b), "=")
	return strings.Join(parts, ".")
}

func b64(b []byte) string {
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

func TestFromRequest(t *testing.T) {
	for h, want := range map[string]bool{
		"token=aaa.bbb.ccc":                         true,
		"Bearer aaa.bbb.ccc":                        true,
		"bearer aaa.bbb.ccc":                        true,
		"Bearer opaque-operator-token_without-dots": false,
		"Basic dXNlcjpwdw==":                        false,
		"":                                          false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/v1/pod/x/restart", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if _, ok := FromRequest(r); ok != want {
			t.Errorf("%q: %v, want %v", h, ok, want)
		}
	}
}

// The middleware with a JWKS served over HTTP, as DC/OS IAM serves it:
// valid, expired and wrong-key tokens on a mutating route; reads and the
// operator token untouched; a key rotation picked up; the cached keys
// used while IAM is down.
func TestMiddlewareWithServedJWKS(t *testing.T) {
	iam, second := keys(t)
	var mu sync.Mutex
	served := jwks("k1", &iam.PublicKey)
	up, fetches := true, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/acs/api/v1/auth/jwks" || !up {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fetches++
		_ = json.NewEncoder(w).Encode(served)
	}))
	defer srv.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return fetches }
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ks := NewKeySet(srv.URL+"/acs/api/v1/auth/jwks", zaptest.NewLogger(t))
	ks.Now = clock
	accepted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	other := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Middleware(ks, accepted, other)
	do := func(method, auth string) (int, string) {
		r := httptest.NewRequest(method, "/v1/pod/consul-server-0/replace", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		b, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(b)
	}
	claims := func(exp time.Time) map[string]any { return map[string]any{"uid": "bootstrapuser", "exp": exp.Unix()} }

	if code, body := do(http.MethodPost, "token="+sign(t, iam, jose.RS256, "k1", claims(now.Add(time.Hour)))); code != http.StatusAccepted {
		t.Fatalf("valid token=: %d %s", code, body)
	}
	if code, body := do(http.MethodPut, "Bearer "+sign(t, iam, jose.RS256, "k1", claims(now.Add(time.Hour)))); code != http.StatusAccepted {
		t.Fatalf("valid Bearer: %d %s", code, body)
	}
	code, body := do(http.MethodPost, "token="+sign(t, iam, jose.RS256, "k1", claims(now.Add(-time.Minute))))
	if code != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Fatalf("expired: %d %s", code, body)
	}
	code, body = do(http.MethodPost, "token="+sign(t, second, jose.RS256, "k1", claims(now.Add(time.Hour))))
	if code != http.StatusUnauthorized || !strings.Contains(body, "signature") {
		t.Fatalf("wrong key: %d %s", code, body)
	}
	// Reads, no token and the operator token go to the next handler.
	if code, _ := do(http.MethodGet, "token="+sign(t, second, jose.RS256, "k1", claims(now.Add(time.Hour)))); code != http.StatusTeapot {
		t.Fatalf("GET with a bad token: %d, want the next handler", code)
	}
	if code, _ := do(http.MethodPost, ""); code != http.StatusTeapot {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := do(http.MethodPost, "Bearer operator-token-without-dots"); code != http.StatusTeapot {
		t.Fatalf("operator token: %d", code)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d fetches of the key set, want 1 (cached)", n)
	}

	// IAM rotates to a new key: a token with the new kid makes the cache
	// fetch again at once (once MinRefetch has passed since the last).
	mu.Lock()
	now = now.Add(MinRefetch)
	served = &jose.JSONWebKeySet{Keys: append(jwks("k1", &iam.PublicKey).Keys, jwks("k2", &second.PublicKey).Keys...)}
	mu.Unlock()
	if code, body := do(http.MethodPost, "token="+sign(t, second, jose.RS256, "k2", claims(now.Add(time.Hour)))); code != http.StatusAccepted {
		t.Fatalf("token with the rotated-in key: %d %s", code, body)
	}
	// Unknown kids do not make the cache ask IAM more than every MinRefetch.
	for i := 0; i < 5; i++ {
		if code, _ := do(http.MethodPost, "token="+sign(t, iam, jose.RS256, "k9", claims(now.Add(time.Hour)))); code != http.StatusUnauthorized {
			t.Fatalf("unknown kid: %d", code)
		}
	}
	if n := count(); n != 2 {
		t.Fatalf("%d fetches, want 2 (first, rotation; none for the unknown kid within MinRefetch)", n)
	}
	mu.Lock()
	now = now.Add(MinRefetch)
	mu.Unlock()
	if code, _ := do(http.MethodPost, "token="+sign(t, iam, jose.RS256, "k9", claims(now.Add(time.Hour)))); code != http.StatusUnauthorized {
		t.Fatalf("unknown kid: %d", code)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d fetches, want 3 (the unknown kid after MinRefetch)", n)
	}
	// IAM down after MaxAge: the cached keys still serve.
	mu.Lock()
	up, now = false, now.Add(MaxAge+time.Minute)
	mu.Unlock()
	if code, body := do(http.MethodPost, "token="+sign(t, iam, jose.RS256, "k1", claims(now.Add(time.Hour)))); code != http.StatusAccepted {
		t.Fatalf("IAM down, cached keys: %d %s", code, body)
	}
}

// With IAM unreachable from the start, a DC/OS token gets 401 saying so.
func TestMiddlewareWithoutKeys(t *testing.T) {
	iam, _ := keys(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ks := NewKeySet(srv.URL+"/jwks", zaptest.NewLogger(t))
	h := Middleware(ks, http.NotFoundHandler(), http.NotFoundHandler())
	r := httptest.NewRequest(http.MethodPost, "/v1/plans/deploy/restart", nil)
	r.Header.Set("Authorization", "token="+sign(t, iam, jose.RS256, "k1", map[string]any{"uid": "u", "exp": time.Now().Add(time.Hour).Unix()}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "404") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}
