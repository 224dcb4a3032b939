// Package dcoslogin logs a DC/OS service account in to DC/OS IAM: the
// account's key signs a short login token (RS256, {"uid", "exp"}), IAM
// answers POST <login_endpoint> {"uid", "token"} with an authentication
// token, which the scheduler sends to the Mesos master as
// "Authorization: token=<token>" (DC/OS's form). The token is cached and
// renewed before it expires, or after the master refused it.
package dcoslogin

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"
)

// Account is a DC/OS service account document, as `dcos security secrets
// create-sa-secret` stores it.
type Account struct {
	UID           string
	Key           *rsa.PrivateKey
	LoginEndpoint string
}

// String never shows the key.
func (a Account) String() string { return "service account " + a.UID + " (" + a.LoginEndpoint + ")" }

// GoString, for %#v.
func (a Account) GoString() string { return a.String() }

// Parse reads a service account document. Errors name the field, never a
// value of the key.
func Parse(b []byte) (Account, error) {
	var doc struct {
		Scheme        string `json:"scheme"`
		UID           string `json:"uid"`
		PrivateKey    string `json:"private_key"`
		LoginEndpoint string `json:"login_endpoint"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Account{}, errors.New("the service account document is not JSON")
	}
	if doc.Scheme != "" && doc.Scheme != "RS256" {
		return Account{}, fmt.Errorf("the service account's scheme is %q; only RS256 is supported", doc.Scheme)
	}
	if doc.UID == "" {
		return Account{}, errors.New("the service account document has no uid")
	}
	u, err := url.Parse(doc.LoginEndpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Account{}, fmt.Errorf("the service account's login_endpoint %q is not an http(s) URL", doc.LoginEndpoint)
	}
	key, err := parseKey(doc.PrivateKey)
	if err != nil {
		return Account{}, err
	}
	return Account{UID: doc.UID, Key: key, LoginEndpoint: doc.LoginEndpoint}, nil
}

func parseKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("the service account's private_key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("the service account's private_key is neither a PKCS#1 nor a PKCS#8 key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the service account's private_key is not an RSA key")
	}
	return rk, nil
}

// LoginToken is the short-lived token that proves the account's key to
// IAM: RS256, {"uid", "exp"}.
func LoginToken(a Account, now time.Time, ttl time.Duration) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: a.Key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(map[string]any{"uid": a.UID, "exp": now.Add(ttl).Unix()}).CompactSerialize()
}

// Renewal: a token is renewed when less than renewBefore of its life is
// left; a token without a readable exp is kept defaultLife.
const (
	renewBefore = time.Hour
	defaultLife = 2 * time.Hour
	loginTTL    = 5 * time.Minute
)

// Login holds the account and its current authentication token.
type Login struct {
	Account Account
	Client  *http.Client
	Now     func() time.Time

	mu     sync.Mutex
	token  string
	renew  time.Time
	loginN int
}

// New returns a login for a, over HTTPS trusting the system's roots and
// DC/OS's cluster CA (caBundle, when the file exists).
func New(a Account, caBundle string) *Login {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if b, err := os.ReadFile(caBundle); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &Login{Account: a, Client: &http.Client{Timeout: 30 * time.Second, Transport: tr}, Now: time.Now}
}

// Header is the Authorization header for the master: a cached token, or
// a new login.
func (l *Login) Header(ctx context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	if l.token != "" && now.Before(l.renew) {
		return "token=" + l.token, nil
	}
	tok, err := l.login(ctx, now)
	if err != nil {
		return "", &Error{Account: l.Account.String(), Err: err}
	}
	l.token, l.renew = tok, renewAt(tok, now)
	l.loginN++
	return "token=" + tok, nil
}

// Error is a failed login.
type Error struct {
	Account string
	Err     error
}

func (e *Error) Error() string { return "DC/OS login of " + e.Account + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Refused forgets the token (the master answered 401): the next call logs
// in again.
func (l *Login) Refused() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.token = ""
}

// Logins is how many logins succeeded (tests, logs).
func (l *Login) Logins() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loginN
}

func (l *Login) login(ctx context.Context, now time.Time) (string, error) {
	lt, err := LoginToken(l.Account, now, loginTTL)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"uid": l.Account.UID, "token": lt})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.Account.LoginEndpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		_ = json.Unmarshal(b, &e)
		return "", fmt.Errorf("%s answered %s: %s %s", l.Account.LoginEndpoint, resp.Status, e.Title, e.Description)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("%s answered without a token", l.Account.LoginEndpoint)
	}
	return out.Token, nil
}

// renewAt: renewBefore before the token's exp (read without verifying:
// the token is IAM's answer over the connection the scheduler chose),
// at least a minute from now; defaultLife when there is no exp.
func renewAt(tok string, now time.Time) time.Time {
	var c struct {
		Exp *jwt.NumericDate `json:"exp"`
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return now.Add(defaultLife)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil || json.Unmarshal(payload, &c) != nil || c.Exp == nil {
		return now.Add(defaultLife)
	}
	at := c.Exp.Time().Add(-renewBefore)
	if life := c.Exp.Time().Sub(now); life < 2*renewBefore {
		at = now.Add(life / 2)
	}
	return at
}
