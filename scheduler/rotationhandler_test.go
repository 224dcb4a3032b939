package scheduler

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRotationHandler: a rotation answers its result, 409 with the reason
// when a step failed, 405 (with Allow) for anything but POST, and the
// rotation runs only on POST.
func TestRotationHandler(t *testing.T) {
	ran := 0
	ok := func(context.Context) (any, error) { ran++; return map[string]string{"primary": "fp"}, nil }
	fail := func(context.Context) (any, error) { ran++; return nil, errors.New("no Consul server is running") }
	cases := []struct {
		method string
		rotate func(context.Context) (any, error)
		code   int
		body   string
	}{
		{http.MethodPost, ok, 200, `"primary":"fp"`},
		{http.MethodPost, fail, 409, "rotation of the thing not finished (run it again to resume): no Consul server is running"},
		{http.MethodGet, ok, 405, "POST /v1/x rotates the thing"},
	}
	for _, c := range cases {
		before := ran
		rec := httptest.NewRecorder()
		rotationHandler(rec, httptest.NewRequest(c.method, "/v1/x", nil), "/v1/x", "the thing", time.Second, c.rotate)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s: %d %s, want %d with %q", c.method, rec.Code, rec.Body, c.code, c.body)
		}
		if want := before + map[bool]int{true: 1}[c.method == http.MethodPost]; ran != want {
			t.Errorf("%s: the rotation ran %d times", c.method, ran-before)
		}
		if c.code == 405 && rec.Header().Get("Allow") != "POST" {
			t.Errorf("405 without Allow: POST")
		}
	}
}
