package dev

import (
	"encoding/json"

	"fmt"
	consul "github.com/hashicorp/consul/api"
	"strings"
	"testing"
	"time"
)

type recoverVerdict struct {
	Lost      bool     `json:"quorum_lost"`
	Survivors []string `json:"survivors"`
	Freshest  string   `json:"freshest"`
	Summary   string   `json:"summary"`
}

// TestRecoverAfterLosingTwoOfThreeServers: two of three servers' agents
// are removed for good; `recover status` says quorum is lost and names the
// surviving server as the freshest; `recover --confirm` restarts it with a
// peers.json naming only itself: it is leader again and every key written
// before is there.
func TestRecoverAfterLosingTwoOfThreeServers(t *testing.T) {
	fc := startFaultCluster(t, 28, 5, 3)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-outage", 10)
	var v recoverVerdict
	if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "recover", "status")), &v); err != nil || v.Lost {
		t.Fatalf("healthy cluster: %+v %v", v, err)
	}
	srv := servers(tasks)
	survivor := srv[2]
	for _, s := range srv[:2] {
		if err := fc.Sim.RemoveAgent(s.AgentID); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	eventually(t, 90*time.Second, "recover status: quorum lost, "+survivor.Name+" survives", func() error {
		if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "recover", "status")), &v); err != nil {
			return err
		}
		if !v.Lost || strings.Join(v.Survivors, ",") != survivor.Name || v.Freshest != survivor.Name {
			return fmt.Errorf("verdict %+v", v)
		}
		return nil
	})
	t.Logf("RECOVER status %s after the removal: %s", time.Since(start).Round(100*time.Millisecond), v.Summary)
	t.Logf("%s", fc.operatorCmd(t, "recover", "status"))

	start = time.Now()
	t.Logf("%s", fc.operatorCmd(t, "recover", "--confirm"))
	c := consulClient(t, fc.Cluster, survivor.AgentIP)
	eventually(t, 3*time.Minute, survivor.Name+" leads again", func() error {
		leader, err := c.Status().Leader()
		if err != nil || leader == "" {
			return fmt.Errorf("leader %q: %v", leader, err)
		}
		return nil
	})
	eventually(t, time.Minute, "every key, read through the leader", func() error {
		pairs, _, err := c.KV().List("before-outage/", &consul.QueryOptions{RequireConsistent: true})
		if err != nil {
			return err
		}
		if len(pairs) != 10 {
			return fmt.Errorf("%d keys", len(pairs))
		}
		return nil
	})
	t.Logf("RECOVER quorum back and every key read %s after recover --confirm", time.Since(start).Round(100*time.Millisecond))
}
