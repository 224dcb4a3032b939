package taskspec

import "testing"

func TestSecretsCopyMessage(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		data, err := EncodeSecretsCopyRequest("http://127.0.0.1:9090", "", refresh)
		if err != nil {
			t.Fatal(err)
		}
		if k, err := MessageKind(data); err != nil || k != KindSecretsCopy {
			t.Fatalf("kind %q %v", k, err)
		}
		m, err := DecodeSecretsCopyRequest(data)
		if err != nil || m.SchedulerURL != "http://127.0.0.1:9090" || m.Refresh != refresh {
			t.Fatalf("%+v %v", m, err)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://user:pw@host:1", "http://"} {
		if _, err := EncodeSecretsCopyRequest(bad, "", false); err == nil {
			t.Errorf("scheduler URL %q accepted", bad)
		}
	}
	tls, _ := EncodeTLSRenew("http://127.0.0.1:9090", "")
	if _, err := DecodeSecretsCopyRequest(tls); err == nil {
		t.Fatal("a TLS renewal decoded as a secrets copy request")
	}
	if _, err := DecodeSecretsCopyRequest([]byte(`{"version":1,"kind":"secrets_copy","scheduler_url":"gopher://x"}`)); err == nil {
		t.Fatal("a bad URL in a message accepted")
	}
}
