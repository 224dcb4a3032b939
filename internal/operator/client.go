// Package operator is the operator's side of dcos-consul: the commands
// behind `dcos consul ...` (and `dcos-consul consul ...`), which read the
// scheduler's HTTP API (plans, pods, endpoints) and, for members and raft
// peers, the Consul HTTP API of a server the scheduler lists.
//
// Fetching (Client) is kept apart from rendering (the Render* functions are
// pure: data in, text out).
package operator

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to the scheduler API at one Location.
type Client struct {
	loc  Location
	http *http.Client
}

// NewClient returns a client for loc; timeout bounds each request.
func NewClient(loc Location, timeout time.Duration) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if loc.Insecure || loc.CAPath != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if loc.Insecure {
			tc.InsecureSkipVerify = true // the operator asked for it (DCOS_TLS_INSECURE=1, core.ssl_verify=false)
		} else {
			pem, err := os.ReadFile(loc.CAPath)
			if err != nil {
				return nil, fmt.Errorf("reading the CA bundle: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("the CA bundle %s holds no PEM certificate", loc.CAPath)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return &Client{loc: loc, http: &http.Client{Timeout: timeout, Transport: tr}}, nil
}

// Location is where the client sends its requests.
func (c *Client) Location() Location { return c.loc }

// Error is an answer from the scheduler (or from Admin Router in front of
// it) that is not what was asked for.
type Error struct {
	Method, URL string
	Status      int
	// Message is the scheduler's own message (its JSON error body), or a
	// description of what came back.
	Message string
	// Hint says what to do about it, if anything.
	Hint string
	// API is true when the body was JSON: the scheduler API itself
	// answered (not Admin Router or something else at that address).
	API bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Hint != "" {
		s += "\n" + e.Hint
	}
	return s
}

// IsNotFound reports whether err is a 404 from the scheduler API itself.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound && e.API
}

// UnreachableError: no HTTP answer at all.
type UnreachableError struct {
	URL  string
	From string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the scheduler at %s (address from %s): %v\nIs the service running? Check the address (--url, %s) or the service name (--name).",
		e.URL, e.From, e.Err, EnvURL)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Response is a successful answer: its status and its JSON body.
type Response struct {
	Status int
	Body   json.RawMessage
}

// Get fetches path (e.g. "/v1/plans/deploy"). Any 2xx is returned, and so
// is every status in also (a plan answers 417 with its body when it has
// errors).
func (c *Client) Get(ctx context.Context, path string, also ...int) (Response, error) {
	return c.do(ctx, http.MethodGet, path, also)
}

// GetPEM fetches path whose answer is PEM, not JSON (the CA certificate
// at /v1/tls/ca): Get would refuse it as "not JSON".
func (c *Client) GetPEM(ctx context.Context, path string) ([]byte, error) {
	r, err := c.doURL(ctx, http.MethodGet, c.loc.BaseURL+path, map[string]string{"Accept": "application/x-pem-file"}, nil, nil)
	if err != nil {
		return nil, err
	}
	return r.Body, nil
}

// Post sends an empty POST to path.
func (c *Client) Post(ctx context.Context, path string) (Response, error) {
	return c.do(ctx, http.MethodPost, path, nil)
}

// PostJSON sends v as the JSON body of a POST to path.
func (c *Client) PostJSON(ctx context.Context, path string, v any) (Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Response{}, err
	}
	return c.doURL(ctx, http.MethodPost, c.loc.BaseURL+path, nil, b, nil)
}

func (c *Client) do(ctx context.Context, method, path string, also []int) (Response, error) {
	return c.doURL(ctx, method, c.loc.BaseURL+path, nil, nil, also)
}

// Cosmos media types of the service update call (version 1).
const (
	cosmosUpdateRequest  = "application/vnd.dcos.service.update-request+json;charset=utf-8;version=v1"
	cosmosUpdateResponse = "application/vnd.dcos.service.update-response+json;charset=utf-8;version=v1"
)

// CosmosUpdate posts a service update request (JSON) to Cosmos at base
// (the DC/OS URL, or dev's Cosmos stand-in): POST <base>/cosmos/service/update.
func (c *Client) CosmosUpdate(ctx context.Context, base string, request []byte) (Response, error) {
	return c.doURL(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/cosmos/service/update",
		map[string]string{"Content-Type": cosmosUpdateRequest, "Accept": cosmosUpdateResponse}, request, nil)
}

func (c *Client) doURL(ctx context.Context, method, u string, hdr map[string]string, reqBody []byte, also []int) (Response, error) {
	var rd io.Reader
	if reqBody != nil {
		rd = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c.loc.Token != "" {
		req.Header.Set("Authorization", "token="+c.loc.Token)
	}
	if c.loc.OperatorToken != "" && strings.HasPrefix(u, c.loc.BaseURL+"/") {
		// The scheduler's own token goes to the scheduler only (not Cosmos).
		req.Header.Set(OperatorTokenHeader, c.loc.OperatorToken)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, &UnreachableError{URL: u, From: c.loc.From, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	for _, s := range also {
		ok = ok || resp.StatusCode == s
	}
	isJSON := json.Valid(body)
	if ok && (isJSON || req.Header.Get("Accept") != "application/json") {
		// A caller that asked for another type (GetPEM) gets it as it is.
		return Response{Status: resp.StatusCode, Body: body}, nil
	}
	e := &Error{Method: method, URL: u, Status: resp.StatusCode, API: isJSON}
	if isJSON {
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Message != "" {
			e.Message = msg.Message
		} else {
			e.Message = strings.TrimSpace(string(body))
		}
	} else {
		e.Message = "the answer is not JSON (" + describeBody(resp.Header.Get("Content-Type"), body) + ")"
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && isJSON && operatorRealm(resp) && c.loc.OperatorToken == "":
		e.Hint = "This command needs the service's operator token: set " + EnvTokenFile + " to the file holding it (`dcos-consul dev` prints it; see docs/security.md)."
	case resp.StatusCode == http.StatusUnauthorized && isJSON && operatorRealm(resp):
		e.Hint = "The operator token in " + EnvTokenFile + " was refused: it is not this service's token."
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		if c.loc.Token == "" {
			e.Hint = "No DC/OS token was sent: log in with `dcos auth login` (or set " + EnvDCOSToken + ")."
		} else {
			e.Hint = "The DC/OS token was refused: it may have expired, or this user may not be allowed to use the service; log in again with `dcos auth login`."
		}
	case ok:
		e.Hint = "Is " + addrWord(c.loc) + " the dcos-consul scheduler API?"
	case !isJSON && resp.StatusCode == http.StatusNotFound && c.loc.Service != "":
		e.Hint = fmt.Sprintf("DC/OS has no service named %q (or its scheduler is not running yet): check --name; `dcos service` lists the services.", c.loc.Service)
	case !isJSON && (resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout):
		e.Hint = "The scheduler did not answer behind Admin Router: it may be starting or restarting; see `dcos marathon app show " + c.loc.Service + "` and its log."
	case !isJSON:
		e.Hint = "Is " + addrWord(c.loc) + " the dcos-consul scheduler API?"
	}
	return Response{}, e
}

// operatorRealm: the scheduler itself asked for its operator token.
func operatorRealm(resp *http.Response) bool {
	return strings.Contains(resp.Header.Get("WWW-Authenticate"), "dcos-consul")
}

// OperatorTokenHeader carries the service's operator token. It is not
// Authorization, which Admin Router reads as the DC/OS token.
const OperatorTokenHeader = "X-Dcos-Consul-Token"

func addrWord(l Location) string {
	return fmt.Sprintf("%s (from %s)", l.BaseURL, l.From)
}

func describeBody(contentType string, body []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "" {
		mt = "no content type"
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return mt + ", empty body"
	}
	if len(b) > 120 {
		b = append(b[:120:120], "..."...)
	}
	return fmt.Sprintf("%s: %q", mt, b)
}
