package taskspec

import (
	"bytes"
	"testing"
)

// FuzzDecode: any TaskInfo.data either is refused with an error or decodes
// to a spec that encodes and decodes again to the same document.
func FuzzDecode(f *testing.F) {
	good, err := Encode(validSpec())
	if err != nil {
		f.Fatal(err)
	}
	client := validSpec()
	client.Role, client.BootstrapExpect = RoleClient, 0
	client.ExtraConfig = []byte(`{"log_json": true}`)
	goodClient, _ := Encode(client)
	for _, seed := range [][]byte{good, goodClient, nil, []byte("{}"), []byte(`{"version":1}`), []byte(`{"version":2}`),
		[]byte(`{"version":1,"role":"server","bootstrap_expect":-1}`), []byte(`null`), []byte(`[]`),
		append(append([]byte{}, good...), []byte(` trailing`)...), []byte(`{"version":1,"extra_config":null}`)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid spec: %v", err)
		}
		b, err := Encode(s)
		if err != nil {
			t.Fatalf("a decoded spec does not encode: %v", err)
		}
		s2, err := Decode(b)
		if err != nil {
			t.Fatalf("an encoded spec does not decode: %v\n%s", err, b)
		}
		b2, err := Encode(s2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the document:\n%s\n%s (%v)", b, b2, err)
		}
	})
}

// FuzzDecodeJoinUpdate: any MESSAGE data is refused or round-trips.
func FuzzDecodeJoinUpdate(f *testing.F) {
	good, _ := EncodeJoinUpdate([]string{"10.0.0.1:8301", "[::1]:8301"})
	for _, seed := range [][]byte{good, nil, []byte(`{}`), []byte(`{"version":1,"kind":"join","join_addrs":["x"]}`)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeJoinUpdate(data)
		if err != nil {
			return
		}
		b, err := EncodeJoinUpdate(u.JoinAddrs)
		if err != nil {
			t.Fatalf("decoded addresses do not encode: %v", err)
		}
		if _, err := DecodeJoinUpdate(b); err != nil {
			t.Fatalf("encoded message does not decode: %v", err)
		}
	})
}
