package credentials

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadSecret(t *testing.T) {
	if s, err := ReadSecret(write(t, "  s3cret\n")); err != nil || s != "s3cret" {
		t.Fatalf("ReadSecret = %q, %v", s, err)
	}
	cases := map[string]string{
		"":                                  "is empty",
		"\n \n":                             "is empty",
		"one\ntwo\n":                        "more than one line",
		"a\x00b":                            "control character",
		`{"uid":"x","private_key":"-----"}`: "DC/OS service account",
		strings.Repeat("x", maxSize+1):      "larger than",
	}
	for content, want := range cases {
		_, err := ReadSecret(write(t, content))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20q: %v, want an error with %q", content, err, want)
		}
		if err != nil && len(content) > 3 && strings.Contains(err.Error(), content) {
			t.Errorf("the error shows the content: %v", err)
		}
	}
	_, err := ReadSecret(write(t, `{"uid":"x","private_key":"k"}`))
	if !errors.Is(err, ErrServiceAccountLogin) {
		t.Errorf("service account document: %v", err)
	}
	if _, err := ReadSecret(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	// A JSON document that is not a service account is a plain secret.
	if s, err := ReadSecret(write(t, `{"a":1}`)); err != nil || s != `{"a":1}` {
		t.Errorf("JSON secret: %q, %v", s, err)
	}
}

func TestReadZK(t *testing.T) {
	z, err := ReadZK(write(t, "dcos-consul:pa:ss\n"))
	if err != nil || z.User != "dcos-consul" || z.Password != "pa:ss" || string(z.Auth()) != "dcos-consul:pa:ss" {
		t.Fatalf("ReadZK = %+v, %v", z, err)
	}
	for _, s := range []string{fmt.Sprint(z), fmt.Sprintf("%v %+v %#v %s", z, z, z, z)} {
		if strings.Contains(s, "pa:ss") {
			t.Errorf("formatting shows the password: %s", s)
		}
	}
	for _, bad := range []string{"nopassword", ":pw", "user:"} {
		if _, err := ReadZK(write(t, bad)); err == nil || !strings.Contains(err.Error(), "user:password") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
