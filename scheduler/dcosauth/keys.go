package dcosauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	jose "gopkg.in/square/go-jose.v2"
)

// Cache timing: keys are fetched again after MaxAge, and at once for a
// token naming an unknown kid (IAM rotated its key), at most every
// MinRefetch.
const (
	MaxAge     = 10 * time.Minute
	MinRefetch = 10 * time.Second
)

// KeySet fetches DC/OS IAM's key set and caches it.
type KeySet struct {
	URL    string
	Client *http.Client
	Now    func() time.Time
	Log    *zap.Logger

	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt
}

// NewKeySet returns a cache of the key set at url.
func NewKeySet(url string, log *zap.Logger) *KeySet {
	if log == nil {
		log = zap.NewNop()
	}
	return &KeySet{URL: url, Client: &http.Client{Timeout: 10 * time.Second}, Now: time.Now, Log: log}
}

// Keys returns the cached set, fetched first when it is older than MaxAge
// or when kid is not in it (rate limited). A failed fetch keeps the
// cached keys, if any.
func (k *KeySet) Keys(ctx context.Context, kid string) (*jose.JSONWebKeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.Now()
	fetch := k.keys == nil || now.Sub(k.fetchedAt) >= MaxAge || (kid != "" && len(k.keys.Key(kid)) == 0)
	if fetch && !k.triedAt.IsZero() && now.Sub(k.triedAt) < MinRefetch {
		fetch = false // IAM is asked at most every MinRefetch
	}
	if !fetch {
		if k.keys == nil {
			return nil, fmt.Errorf("DC/OS IAM's keys could not be fetched from %s; try again in %s", k.URL, MinRefetch)
		}
		return k.keys, nil
	}
	k.triedAt = now
	set, err := k.fetch(ctx)
	if err != nil {
		k.Log.Warn("cannot fetch DC/OS IAM's token keys", zap.String("url", k.URL), zap.Error(err), zap.Bool("cached_keys", k.keys != nil))
		if k.keys != nil {
			return k.keys, nil
		}
		return nil, err
	}
	k.keys, k.fetchedAt = set, now
	k.Log.Info("DC/OS IAM's token keys fetched", zap.String("url", k.URL), zap.Int("keys", len(set.Keys)))
	return set, nil
}

func (k *KeySet) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.URL, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON Web Key Set: %w", k.URL, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("GET %s: the key set has no key", k.URL)
	}
	return &set, nil
}

// Authenticate verifies a token with the cached keys.
func (k *KeySet) Authenticate(ctx context.Context, token string) (Claims, error) {
	keys, err := k.Keys(ctx, KeyID(token))
	if err != nil {
		return Claims{}, err
	}
	return Verify(keys, token, k.Now())
}

// Middleware sends a mutating request (not GET, HEAD or OPTIONS) that
// carries a DC/OS token to accepted when the token is valid, and answers
// 401 with the reason when it is not. Every other request (reads, no
// token, the operator token) goes to other, which decides as before.
func Middleware(k *KeySet, accepted, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := FromRequest(r)
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			ok = false
		}
		if !ok {
			other.ServeHTTP(w, r)
			return
		}
		c, err := k.Authenticate(r.Context(), tok)
		if err != nil {
			k.Log.Info("DC/OS token refused", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
			w.Header().Set("WWW-Authenticate", `Bearer realm="dcos-consul scheduler", error="invalid_token"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": http.StatusUnauthorized, "error": http.StatusText(http.StatusUnauthorized),
				"message": r.Method + " " + r.URL.Path + ": the DC/OS token is not accepted: " + err.Error()})
			return
		}
		k.Log.Info("DC/OS token accepted", zap.String("uid", c.UID), zap.String("method", r.Method), zap.String("path", r.URL.Path))
		accepted.ServeHTTP(w, r)
	})
}
