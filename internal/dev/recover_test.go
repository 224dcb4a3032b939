package dev

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

type recoverVerdict struct {
	Lost      bool     `json:"quorum_lost"`
	Survivors []string `json:"survivors"`
	Freshest  string   `json:"freshest"`
	Summary   string   `json:"summary"`
	Scheduler *struct {
		Lost      bool `json:"quorum_lost"`
		Survivors []struct {
			Name      string `json:"name"`
			LastIndex uint64 `json:"last_index"`
		} `json:"survivors"`
		Summary string `json:"summary"`
	} `json:"scheduler"`
}

// TestRecoverAfterLosingTwoOfThreeServers: two of three servers' agents
// are removed for good; the scheduler detects the lost quorum by itself
// (`recover status`, /v1/health 417, the recovery plan's outage step
// naming the survivor and its raft index); `recover status` names the
// surviving server as the freshest; `recover --confirm` restarts it with a
// peers.json naming only itself, then the two lost servers are replaced
// by new ones: every key written before is there, and the cluster is
// back at 3 servers, 3 raft voters, with the verdict cleared.
func TestRecoverAfterLosingTwoOfThreeServers(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 28, 5, 3)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-outage", 10)
	var v recoverVerdict
	eventually(t, time.Minute, "the scheduler's verdict on a healthy cluster", func() error {
		if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "recover", "status")), &v); err != nil {
			return err
		}
		if v.Lost || v.Scheduler == nil || v.Scheduler.Lost || !strings.Contains(v.Scheduler.Summary, "quorum: yes") {
			return fmt.Errorf("verdict %+v scheduler %+v", v, v.Scheduler)
		}
		return nil
	})
	srv := servers(tasks)
	survivor := srv[2]
	for _, s := range srv[:2] {
		if err := fc.Sim.RemoveAgent(s.AgentID); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	eventually(t, 3*time.Minute, "recover status: quorum lost, "+survivor.Name+" survives, in the scheduler's verdict too", func() error {
		if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "recover", "status")), &v); err != nil {
			return err
		}
		if !v.Lost || strings.Join(v.Survivors, ",") != survivor.Name || v.Freshest != survivor.Name {
			return fmt.Errorf("verdict %+v", v)
		}
		if v.Scheduler == nil || !v.Scheduler.Lost || len(v.Scheduler.Survivors) != 1 || v.Scheduler.Survivors[0].Name != survivor.Name ||
			v.Scheduler.Survivors[0].LastIndex == 0 {
			return fmt.Errorf("the scheduler's verdict %+v", v.Scheduler)
		}
		return nil
	})
	t.Logf("RECOVER quorum lost detected by the scheduler %s after the removal: %s", time.Since(start).Round(100*time.Millisecond), v.Scheduler.Summary)
	t.Logf("%s", fc.operatorCmd(t, "recover", "status"))
	code, body := getBody(t, fc.SchedulerURL+"/v1/health")
	if code != http.StatusExpectationFailed || !strings.Contains(body, "quorum_lost") || !strings.Contains(body, survivor.Name) {
		t.Fatalf("/v1/health while quorum is lost: %d %s", code, body)
	}
	plan := fc.operatorCmd(t, "plan", "show", "recovery")
	if !strings.Contains(plan, "QUORUM LOST") || !strings.Contains(plan, survivor.Name+" (raft index") || !strings.Contains(plan, "recover --confirm") {
		t.Fatalf("the recovery plan does not say quorum is lost, who survives and what to run:\n%s", plan)
	}

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
	readAll := func() error {
		pairs, _, err := c.KV().List("before-outage/", &consul.QueryOptions{RequireConsistent: true})
		if err != nil {
			return err
		}
		if len(pairs) != 10 {
			return fmt.Errorf("%d keys", len(pairs))
		}
		return nil
	}
	eventually(t, time.Minute, "every key, read through the leader", readAll)
	t.Logf("RECOVER quorum back and every key read %s after recover --confirm", time.Since(start).Round(100*time.Millisecond))

	// The lost servers come back as new servers, one at a time.
	eventually(t, 8*time.Minute, "3 servers running, 3 raft voters", func() error {
		running := servers(runningTasks(t, fc.Cluster))
		if len(running) != 3 {
			return fmt.Errorf("%d servers running", len(running))
		}
		peers, err := raftPeers(c)
		if err != nil {
			return err
		}
		voters := 0
		for _, p := range peers {
			if p.Voter {
				voters++
			}
		}
		if len(peers) != 3 || voters != 3 {
			return fmt.Errorf("raft peers %d, voters %d", len(peers), voters)
		}
		return nil
	})
	t.Logf("RECOVER back at 3 servers and 3 voters %s after recover --confirm", time.Since(start).Round(100*time.Millisecond))
	eventually(t, time.Minute, "every key after the replacements", readAll)
	eventually(t, time.Minute, "the scheduler's verdict cleared", func() error {
		if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "recover", "status")), &v); err != nil {
			return err
		}
		if v.Lost || v.Scheduler == nil || v.Scheduler.Lost {
			return fmt.Errorf("verdict %+v scheduler %+v", v, v.Scheduler)
		}
		if code, body := getBody(t, fc.SchedulerURL+"/v1/health"); strings.Contains(body, "quorum_lost") {
			return fmt.Errorf("/v1/health %d %s", code, body)
		}
		if plan := fc.operatorCmd(t, "plan", "show", "recovery"); strings.Contains(plan, "outage") {
			return fmt.Errorf("the recovery plan still has the outage phase:\n%s", plan)
		}
		return nil
	})
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
