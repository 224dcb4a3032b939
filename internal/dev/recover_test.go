package dev

import (
	"encoding/json"
	"fmt"
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

// TestRecoverStatusNamesTheSurvivor: two of three servers' agents are
// removed for good; `recover status` says quorum is lost and names the
// surviving server as the freshest.
func TestRecoverStatusNamesTheSurvivor(t *testing.T) {
	fc := startFaultCluster(t, 28, 5, 3)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, tasks, "before-outage", 10)
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
}
