package taskspec

import (
	"strings"
	"testing"
)

func TestTLSRenewMessage(t *testing.T) {
	data, err := EncodeTLSRenew("http://127.0.0.1:9090", "")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := MessageKind(data); err != nil || k != KindTLSRenew {
		t.Fatalf("kind %q, %v", k, err)
	}
	m, err := DecodeTLSRenew(data)
	if err != nil || m.SchedulerURL != "http://127.0.0.1:9090" {
		t.Fatalf("%+v, %v", m, err)
	}
	join, _ := EncodeJoinUpdate([]string{"127.0.0.2:8301"})
	if k, err := MessageKind(join); err != nil || k != KindJoin {
		t.Errorf("join message kind %q, %v", k, err)
	}
	if _, err := DecodeTLSRenew(join); err == nil {
		t.Error("a join message decoded as a TLS renewal")
	}
	if _, err := DecodeJoinUpdate(data); err == nil {
		t.Error("a TLS renewal decoded as a join message")
	}
	for _, u := range []string{"", "ftp://x:1", "http://", "http://user:pw@h:1", "not a url"} {
		if _, err := EncodeTLSRenew(u, ""); err == nil {
			t.Errorf("EncodeTLSRenew(%q) accepted", u)
		}
	}
	for _, bad := range []string{``, `{}`, `{"version":2,"kind":"tls_renew","scheduler_url":"http://h:1"}`,
		`{"version":1,"kind":"other"}`, `{"version":1,"kind":"tls_renew","scheduler_url":"file:///etc"}`} {
		if _, err := DecodeTLSRenew([]byte(bad)); err == nil {
			t.Errorf("DecodeTLSRenew(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "Bearer") {
			t.Error(err)
		}
	}
}
