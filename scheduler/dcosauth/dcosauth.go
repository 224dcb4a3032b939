// Package dcosauth accepts DC/OS authentication tokens as Admin Router
// does: a JWT signed RS256 by DC/OS IAM, whose key is in IAM's JSON Web
// Key Set (/acs/api/v1/auth/jwks), with an "exp" in the future and a
// "uid". Any valid token is accepted: any DC/OS user or service account
// may operate the service, as anyone Admin Router lets through to the
// service's API can.
//
// Verify is pure over a key set and a clock; Keys fetches and caches the
// key set (the imperative shell).
package dcosauth

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"
)

// Claims are the claims of a DC/OS token that matter here.
type Claims struct {
	UID string `json:"uid"`
	// Exp is the expiry, seconds since the epoch.
	Exp *jwt.NumericDate `json:"exp"`
}

// Errors of Verify; each says what was wrong with the token.
var (
	ErrMalformed  = errors.New("not a signed JWT")
	ErrAlgorithm  = errors.New("not signed with RS256")
	ErrUnknownKey = errors.New("signed with a key that is not in DC/OS IAM's key set")
	ErrSignature  = errors.New("the signature does not verify")
	ErrExpired    = errors.New("expired")
	ErrNoExpiry   = errors.New("has no exp claim")
	ErrNoUID      = errors.New("has no uid claim")
)

// KeyID is the "kid" of the token's header, "" when it has none or is
// not a JWT.
func KeyID(token string) string {
	t, err := jwt.ParseSigned(token)
	if err != nil || len(t.Headers) != 1 {
		return ""
	}
	return t.Headers[0].KeyID
}

// Verify checks token against keys at now: RS256 only, a key of the set
// (by kid when the token names one, else any RSA key of the set), a
// valid signature, exp present and after now, uid present.
func Verify(keys *jose.JSONWebKeySet, token string, now time.Time) (Claims, error) {
	t, err := jwt.ParseSigned(token)
	if err != nil || len(t.Headers) != 1 {
		return Claims{}, ErrMalformed
	}
	h := t.Headers[0]
	if h.Algorithm != string(jose.RS256) {
		return Claims{}, fmt.Errorf("%w (alg %q)", ErrAlgorithm, h.Algorithm)
	}
	cands := candidates(keys, h.KeyID)
	if len(cands) == 0 {
		return Claims{}, fmt.Errorf("%w (kid %q)", ErrUnknownKey, h.KeyID)
	}
	var c Claims
	verified := false
	for _, k := range cands {
		if t.Claims(k, &c) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Claims{}, ErrSignature
	}
	switch {
	case c.Exp == nil:
		return Claims{}, ErrNoExpiry
	case !now.Before(c.Exp.Time()):
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.Exp.Time().UTC().Format(time.RFC3339))
	case c.UID == "":
		return Claims{}, ErrNoUID
	}
	return c, nil
}

// candidates are the RSA public keys of the set that may have signed a
// token with this kid.
func candidates(keys *jose.JSONWebKeySet, kid string) []*rsa.PublicKey {
	if keys == nil {
		return nil
	}
	var out []*rsa.PublicKey
	for _, k := range keys.Keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			out = append(out, pub)
		}
	}
	return out
}

// FromRequest returns the DC/OS token of a request: "Authorization:
// token=<JWT>" (DC/OS's form) or "Authorization: Bearer <JWT>", when the
// value has a JWT's three parts. The service's operator token (base64url,
// no dots) is never taken for one.
func FromRequest(r *http.Request) (string, bool) {
	a := strings.TrimSpace(r.Header.Get("Authorization"))
	var v string
	switch {
	case len(a) > 6 && strings.EqualFold(a[:6], "token="):
		v = a[6:]
	case len(a) > 7 && strings.EqualFold(a[:7], "bearer "):
		v = a[7:]
	default:
		return "", false
	}
	v = strings.TrimSpace(v)
	if strings.Count(v, ".") != 2 {
		return "", false
	}
	return v, true
}
