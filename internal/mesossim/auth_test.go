package mesossim

import (
	"encoding/base64"
	"io"
	"net/http"
	"testing"
)

// The answers of a master started with --authenticate_http_frameworks
// --http_framework_authenticators=basic --credentials, as Mesos 1.12.0
// gives them (curl against /opt/mesos, 2026-12-03): 401 with
// WWW-Authenticate and "401 Unauthorized." without or with wrong
// credentials, 400 when the authenticated principal is not the
// FrameworkInfo's, 200 and the stream otherwise.
func TestFrameworkAuthenticationAnswers(t *testing.T) {
	o := testOptions(t, 0, true)
	o.FrameworkCredentials = map[string]string{"consul-principal": "s3cret"}
	c := startCluster(t, o)
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	sub := func(principal string) []byte {
		return []byte(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"nobody","name":"x","principal":"` + principal + `"}}}`)
	}
	for _, tc := range []struct {
		name, auth string
		body       []byte
		code       int
		wwwAuth    string
		text       string
	}{
		{"no credentials", "", sub("consul-principal"), 401, `Basic realm="mesos-master-scheduler"`, "401 Unauthorized."},
		{"wrong secret", basic("consul-principal", "bad"), sub("consul-principal"), 401, `Basic realm="mesos-master-scheduler"`, "401 Unauthorized."},
		{"unknown principal", basic("other", "s3cret"), sub("other"), 401, `Basic realm="mesos-master-scheduler"`, "401 Unauthorized."},
		{"not even JSON, no credentials", "", []byte("x"), 401, `Basic realm="mesos-master-scheduler"`, "401 Unauthorized."},
		{"another principal in FrameworkInfo", basic("consul-principal", "s3cret"), sub("other"), 400, "",
			"Failed to validate scheduler::Call: Authenticated principal 'consul-principal' does not match principal 'other' set in `FrameworkInfo`"},
		{"right", basic("consul-principal", "s3cret"), sub("consul-principal"), 200, "", ""},
	} {
		resp, err := postJSON(c.MasterURL(), tc.body, map[string]string{"Authorization": tc.auth})
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if tc.code != 200 {
			body, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("WWW-Authenticate") != tc.wwwAuth || string(body) != tc.text {
			t.Errorf("%s: %d %q %q, want %d %q %q", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, tc.code, tc.wwwAuth, tc.text)
		}
		if tc.code == 401 && resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.name, resp.Header.Get("Content-Type"))
		}
	}
	// Without credentials configured nothing is asked.
	c2 := startCluster(t, testOptions(t, 0, true))
	resp, err := postJSON(c2.MasterURL(), sub("anyone"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("no authentication configured: %d", resp.StatusCode)
	}
}
