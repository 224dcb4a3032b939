package consulclient

import (
	"errors"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

func TestAddrFollowsThePorts(t *testing.T) {
	for _, c := range []struct {
		ip    string
		p     taskspec.Ports
		want  string
		valid bool
	}{
		{"10.0.0.1", taskspec.Ports{HTTP: 8500, HTTPS: -1}, "10.0.0.1:8500", true},
		{"10.0.0.1", taskspec.Ports{HTTP: -1, HTTPS: 8501}, "https://10.0.0.1:8501", true},
		{"10.0.0.1", taskspec.Ports{HTTP: -1, HTTPS: -1}, "", false},
		{"", taskspec.Ports{HTTP: 8500}, "", false},
	} {
		got, ok := Addr(c.ip, c.p)
		if got != c.want || ok != c.valid {
			t.Errorf("Addr(%s, %+v) = %q %v, want %q %v", c.ip, c.p, got, ok, c.want, c.valid)
		}
	}
	if s, h := Split("https://10.0.0.1:8501"); s != "https" || h != "10.0.0.1:8501" {
		t.Errorf("Split: %s %s", s, h)
	}
	if URL("10.0.0.1:8500") != "http://10.0.0.1:8500" {
		t.Error("URL of a plain address")
	}
}

func TestHTTPSNeedsTheCA(t *testing.T) {
	_ = SetCA("")
	if _, err := New("https://10.0.0.1:8501", "", time.Second); !errors.Is(err, ErrNoCA) {
		t.Fatalf("an HTTPS client without a CA: %v", err)
	}
	if _, err := New("10.0.0.1:8500", "", time.Second); err != nil {
		t.Fatal(err)
	}
	ca, _ := pki.NewCA(nil, "t", time.Now())
	if err := SetCA(ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = SetCA("") }()
	if _, err := New("https://10.0.0.1:8501", "", time.Second); err != nil {
		t.Fatal(err)
	}
	if c := TLSConfig(); c == nil || c.RootCAs == nil || c.InsecureSkipVerify {
		t.Fatal("the TLS config does not verify against the CA")
	}
	if err := SetCA("not a certificate"); err == nil {
		t.Fatal("a CA that is no PEM accepted")
	}
}
