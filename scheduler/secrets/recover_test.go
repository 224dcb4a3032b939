package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func fullSecrets(t *testing.T) Secrets {
	t.Helper()
	s, err := LoadOrCreate(context.Background(), &memStore{m: map[string][]byte{}}, nil, errNotFound)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCopyRoundTripAndNeverFormats(t *testing.T) {
	s := fullSecrets(t)
	enc, err := CopyFor(s, "consul", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCopy([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Secrets.ManagementToken != s.ManagementToken || c.Secrets.GossipKey() != s.GossipKey() || c.Secrets.CA.KeyPEM != s.CA.KeyPEM || c.Service != "consul" {
		t.Fatal("the copy does not carry the secrets back")
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, c); strings.Contains(out, s.ManagementToken) || strings.Contains(out, s.GossipKey()) {
			t.Fatalf("%s of a copy shows a secret: %s", f, out)
		}
	}
}

func TestParseCopyRefusesBadCopiesWithoutShowingThem(t *testing.T) {
	s := fullSecrets(t)
	incomplete := s
	incomplete.ManagementToken = ""
	noCA := s
	noCA.CA.CertPEM, noCA.CA.KeyPEM = "", ""
	badKey := s
	badKey.GossipKeys = []string{"c2VjcmV0LWJ1dC1iYWQ="}
	for name, in := range map[string]string{
		"not json":     `{"version":1,"secrets":{"gossip_keys":["c2VjcmV0`,
		"version":      mustCopy(t, s, 2),
		"incomplete":   mustCopy(t, incomplete, 1),
		"no CA":        mustCopy(t, noCA, 1),
		"bad gossip":   mustCopy(t, badKey, 1),
		"empty object": `{}`,
	} {
		_, err := ParseCopy([]byte(in))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), s.OperatorToken) {
			t.Fatalf("%s: the error shows a secret: %v", name, err)
		}
	}
}

func mustCopy(t *testing.T, s Secrets, version int) string {
	t.Helper()
	b, err := json.Marshal(Copy{Version: version, Service: "consul", WrittenAt: time.Now(), Secrets: s})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJudge(t *testing.T) {
	s := fullSecrets(t)
	other := fullSecrets(t)
	c := Copy{Version: CopyVersion, Service: "consul", Secrets: s}
	all := Uses{ACL: true, Gossip: true, TLS: true, Service: "consul"}
	adopted := Presenter{Task: "consul-server-0__x", AdoptedServer: true, Agree: 2, Need: 2}
	alone := Presenter{Task: "consul-server-0__x", AdoptedServer: true, Agree: 1, Need: 2}
	good := Cluster{Reached: true, ManagementOK: true, Keys: []string{s.GossipKey()}}
	cases := []struct {
		name     string
		lost     bool
		p        Presenter
		c        Copy
		u        Uses
		cl       Cluster
		accept   bool
		verified bool
		why      string
	}{
		{"verified", true, adopted, c, all, good, true, true, "verified"},
		{"not lost", false, adopted, c, all, good, false, false, "not lost"},
		{"anonymous", true, Presenter{}, c, all, good, false, false, "only from the operator"},
		{"not adopted", true, Presenter{Task: "consul-client-x__y"}, c, all, good, false, false, "not a live server"},
		{"other service", true, adopted, Copy{Version: 1, Service: "other", Secrets: s}, all, good, false, false, "service \"other\""},
		{"management refused", true, adopted, c, all, Cluster{Reached: true, Keys: good.Keys}, false, false, "management token"},
		{"ACLs off: token not checked", true, adopted, c, Uses{Gossip: true}, Cluster{Reached: true, Keys: good.Keys}, true, true, "verified"},
		{"foreign gossip key", true, adopted, c, all, Cluster{Reached: true, ManagementOK: true, Keys: []string{other.GossipKey()}}, false, false, "primary gossip key is not in the cluster"},
		{"cluster rotated past the copy", true, adopted, c, all, Cluster{Reached: true, ManagementOK: true, Keys: []string{other.GossipKey(), s.GossipKey()}}, false, false, "cluster's primary gossip key is not in its keyring"},
		{"rotation under way in both", true, adopted, Copy{Version: 1, Secrets: withKeys(s, s.GossipKey(), other.GossipKey())}, all, Cluster{Reached: true, ManagementOK: true, Keys: []string{s.GossipKey(), other.GossipKey()}}, true, true, "verified"},
		{"no keyring answered", true, adopted, c, all, Cluster{Reached: true, ManagementOK: true}, false, false, "no gossip keyring"},
		{"no server answers: a majority's word", true, adopted, c, all, Cluster{Err: "connection refused"}, true, false, "unverified"},
		{"no server answers: one volume alone", true, alone, c, all, Cluster{Err: "connection refused"}, false, false, "majority of the servers (2) present the same copy from their volumes, 1 so far"},
		{"a server answers: one volume is enough", true, alone, c, all, good, true, true, "verified"},
		{"operator, no server", true, Presenter{Operator: true}, c, all, Cluster{}, true, false, "the operator"},
		{"operator, wrong token", true, Presenter{Operator: true}, c, all, Cluster{Reached: true, Keys: good.Keys}, false, false, "management token"},
	}
	for _, tc := range cases {
		v := Judge(tc.lost, tc.p, tc.c, tc.u, tc.cl)
		if v.Accept != tc.accept || v.Verified != tc.verified || !strings.Contains(v.Why, tc.why) {
			t.Errorf("%s: %+v, want accept %v verified %v why ~%q", tc.name, v, tc.accept, tc.verified, tc.why)
		}
		if strings.Contains(v.Why, s.ManagementToken) || strings.Contains(v.Why, s.GossipKey()) {
			t.Errorf("%s: the reason shows a secret", tc.name)
		}
	}
}

func withKeys(s Secrets, keys ...string) Secrets {
	s.GossipKeys = keys
	return s
}

func TestRecoveredKeepsBothExecutorKeys(t *testing.T) {
	s, interim := fullSecrets(t), fullSecrets(t)
	r := Recovered(Copy{Version: 1, Secrets: s}, interim)
	if string(r.ExecutorKey) != string(s.ExecutorKey) || r.ManagementToken != s.ManagementToken || r.OperatorToken != s.OperatorToken {
		t.Fatal("the recovered secrets are not the copy's")
	}
	for _, id := range []string{"consul-server-0__a", "consul-client-1__b"} {
		if !r.VerifyCredential(id, s.Credential(id)) {
			t.Fatalf("%s: a credential of the adopted tasks (copy's key) is refused", id)
		}
		if !r.VerifyCredential(id, interim.Credential(id)) {
			t.Fatalf("%s: a credential handed out while the secrets were lost is refused", id)
		}
		if r.Credential(id) != s.Credential(id) {
			t.Fatal("new credentials must be signed with the copy's key")
		}
	}
	if r.VerifyCredential("consul-server-0__a", fullSecrets(t).Credential("consul-server-0__a")) {
		t.Fatal("a credential under an unknown key is accepted")
	}
	if again := Recovered(Copy{Version: 1, Secrets: s}, s); len(again.OldExecutorKeys) != 0 {
		t.Fatal("the copy's own key is added as an old key")
	}
}

func TestSameCopy(t *testing.T) {
	s := fullSecrets(t)
	a := Copy{Version: 1, Secrets: s, WrittenAt: time.Now()}
	b := Copy{Version: 1, Secrets: s, WrittenAt: time.Now().Add(time.Hour)}
	if SameCopy(a) != SameCopy(b) {
		t.Fatal("copies of the same secrets written at different times differ")
	}
	rotated := s
	rotated.GossipKeys = append([]string{fullSecrets(t).GossipKey()}, s.GossipKeys...)
	mgmt := s
	mgmt.ManagementToken = fullSecrets(t).ManagementToken
	for name, other := range map[string]Secrets{"another keyring": rotated, "another management token": mgmt} {
		if SameCopy(Copy{Secrets: other}) == SameCopy(a) {
			t.Errorf("%s: counted as the same copy", name)
		}
	}
}
