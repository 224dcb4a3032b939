package consulagent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

const (
	testKeyA = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	testKeyB = "Zq3hA0t0m3wn0ZzG9Zz4Xq1Lr+uWZ7w0cQ6x8a9p5kE="
)

func gossipSpec(s taskspec.Spec) taskspec.Spec {
	s.GossipEncryption = true
	s.Secrets = &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
	return s
}

func TestConfigGossipEncryption(t *testing.T) {
	spec := gossipSpec(serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500})))
	if _, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb"}); err == nil {
		t.Fatal("a spec that needs gossip encryption started without a key")
	}
	_, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb", GossipKey: "bm90LWEta2V5"})
	if err == nil || strings.Contains(err.Error(), "bm90LWEta2V5") {
		t.Fatalf("a bad key: %v (must be refused without showing it)", err)
	}
	doc, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb", GossipKey: testKeyA})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(doc, &got)
	if got["encrypt"] != testKeyA || got["encrypt_verify_incoming"] != true || got["encrypt_verify_outgoing"] != true {
		t.Fatalf("encrypt settings: %v %v %v", got["encrypt"] != nil, got["encrypt_verify_incoming"], got["encrypt_verify_outgoing"])
	}
	if s := fmt.Sprint(Env{GossipKey: testKeyA}); strings.Contains(s, testKeyA) {
		t.Fatalf("Env prints its key: %s", s)
	}
	plain, _ := Config(serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500})), Env{BindIP: "127.3.0.40", Sandbox: "/sb", GossipKey: testKeyA})
	if strings.Contains(string(plain), "encrypt") {
		t.Fatal("a spec without gossip encryption got an encrypt setting")
	}
}

// TestWrongGossipKeyCannotJoin: an agent holding another key is kept out
// of an encrypted cluster; one with the cluster's key joins.
func TestWrongGossipKeyCannotJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ips := []string{"127.3.0.70", "127.3.0.71", "127.3.0.72"}
	ports := testPorts(freePorts(t, ips, 3))
	log := testLogger(t)
	var agents []*Agent
	t.Cleanup(func() {
		for _, a := range agents {
			a.Stop()
		}
	})
	start := func(spec taskspec.Spec, ip, key string) *Agent {
		a, err := Start(context.Background(), spec, Env{BindIP: ip, Sandbox: t.TempDir(), GossipKey: key}, log)
		if err != nil {
			t.Fatalf("start %s: %v", spec.NodeName, err)
		}
		agents = append(agents, a)
		return a
	}
	server := start(gossipSpec(serverSpec("enc-server", 1, ports)), ips[0], testKeyA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	client := func(name string) taskspec.Spec {
		return gossipSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: name, Datacenter: "dc1",
			Ports: ports, DataDir: "consul-data", JoinAddrs: []string{addr(ips[0], ports.SerfLAN)}, LogLevel: "INFO"})
	}
	intruder := start(client("wrong-key"), ips[1], testKeyB)
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	if err := intruder.Ready(wctx); err == nil {
		t.Fatal("an agent with another gossip key joined the cluster")
	}
	friend := start(client("right-key"), ips[2], testKeyA)
	if err := friend.Ready(ctx); err != nil {
		t.Fatalf("an agent with the cluster's key did not join: %v", err)
	}
	// The friend is ready once it sees the server; the server's own list
	// gets the friend a moment later (serf handles the join's state
	// exchange asynchronously: CI once read it without the friend). Poll
	// until the friend shows, and never accept the intruder.
	deadline := time.Now().Add(30 * time.Second)
	for {
		members, err := apiClient(t, server).Agent().Members(false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range members {
			names = append(names, m.Name)
		}
		all := strings.Join(names, ",")
		if strings.Contains(all, "wrong-key") {
			t.Fatalf("members %v: the agent with another gossip key is a member", names)
		}
		if strings.Contains(all, "right-key") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %v: want right-key (the agent with the cluster's key) within 30 s", names)
		}
		time.Sleep(200 * time.Millisecond)
	}
	self, err := apiClient(t, server).Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if enc := fmt.Sprint(self["Stats"]["serf_lan"].(map[string]any)["encrypted"]); enc != "true" {
		t.Fatalf("serf_lan encrypted = %s", enc)
	}
}

// TestStaleKeyringIsReplaced: a server relaunched on a data directory
// whose keyring predates a rotation starts with the scheduler's keyring.
func TestStaleKeyringIsReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Consul server")
	}
	ip := "127.3.0.80"
	ports := testPorts(freePorts(t, []string{ip}, 3))
	sandbox := t.TempDir()
	spec := gossipSpec(serverSpec("rekeyed", 1, ports))
	run := func(key string, all []string) map[string]int {
		a, err := Start(context.Background(), spec, Env{BindIP: ip, Sandbox: sandbox, GossipKey: key, GossipKeys: all}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		rings, err := apiClient(t, a).Operator().KeyringList(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rings {
			if !r.WAN {
				return r.Keys
			}
		}
		t.Fatal("no LAN keyring")
		return nil
	}
	if keys := run(testKeyA, nil); len(keys) != 1 || keys[testKeyA] == 0 {
		t.Fatalf("first start: %v", keys)
	}
	// A keyring file left by an earlier build (or a run during a
	// rotation) that the cluster no longer uses.
	stale := filepath.Join(sandbox, "consul-data", lanKeyringFile)
	if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte(`["`+testKeyA+`"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := run(testKeyB, []string{testKeyB})
	if len(keys) != 1 || keys[testKeyB] == 0 {
		t.Fatalf("after the rotation: %d keys, B installed %v", len(keys), keys[testKeyB] > 0)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "consul-data", lanKeyringFile)); !os.IsNotExist(err) {
		t.Fatalf("a keyring file is on disk with one key in use: %v", err)
	}
	// Started during a rotation: both keys, in a keyring file.
	keys = run(testKeyA, []string{testKeyB, testKeyA})
	if len(keys) != 2 {
		t.Fatalf("during a rotation: %d keys, want 2", len(keys))
	}
}

// TestConfigGossipRollout: Consul's three steps of turning gossip
// encryption on: the key with neither direction verified, then outgoing,
// then both.
func TestConfigGossipRollout(t *testing.T) {
	for _, tc := range []struct {
		phase   string
		in, out bool
	}{{taskspec.GossipOpen, false, false}, {taskspec.GossipOutgoing, false, true}, {"", true, true}} {
		spec := serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500}))
		spec.GossipEncryption, spec.GossipRollout = true, tc.phase
		spec.Secrets = &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
		doc, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb", GossipKey: "cg8StVXbQJ0gPvMd9o7yrg=="})
		if err != nil {
			t.Fatalf("%q: %v", tc.phase, err)
		}
		var got struct {
			Encrypt string `json:"encrypt"`
			In      bool   `json:"encrypt_verify_incoming"`
			Out     bool   `json:"encrypt_verify_outgoing"`
		}
		if err := json.Unmarshal(doc, &got); err != nil {
			t.Fatal(err)
		}
		if got.Encrypt == "" || got.In != tc.in || got.Out != tc.out {
			t.Errorf("%q: encrypt %q, verify incoming %v outgoing %v; want %v %v", tc.phase, got.Encrypt, got.In, got.Out, tc.in, tc.out)
		}
	}
}
