package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/operator"
)

const aclBootstrappedLine = "Consul ACLs bootstrapped"

// TestDevACLs: with the defaults (security.acl.enabled) a dev cluster comes up with ACLs
// bootstrapped by the scheduler (default deny): anonymous KV reads get 403,
// DNS still answers, the management token (given only with the operator
// token) can do everything; after a SIGKILL of the scheduler the next one
// runs the bootstrap again to the same end; and no ACL secret shows up
// anywhere an observer can read.
func TestDevACLs(t *testing.T) {
	besideOthers(t)
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	workDir := t.TempDir()
	opts := Options{
		Agents: 4, Servers: 3, WorkDir: workDir, Binary: binary,
		MasterIP: "127.7.0.1", MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("dev"),
	}
	c, leader, stop := startLeading(t, opts, 4*time.Minute)
	leaderIP, _, _ := net.SplitHostPort(leader)
	schedLog := filepath.Join(workDir, "scheduler.log")
	eventually(t, 3*time.Minute, "the scheduler bootstraps ACLs", func() error {
		if n := countInFile(schedLog, aclBootstrappedLine); n < 1 {
			return fmt.Errorf("no %q in the scheduler log", aclBootstrappedLine)
		}
		return nil
	})
	tokenBytes, _ := os.ReadFile(c.OperatorTokenFile())
	operatorToken := strings.TrimSpace(string(tokenBytes))
	mgmtToken := managementToken(t, c, operatorToken)

	anon := aclClient(t, c, leaderIP, "")
	if _, _, err := anon.KV().Get("any", nil); !isStatus(err, 403) {
		t.Fatalf("anonymous KV read: %v, want 403", err)
	}
	mgmt := aclClient(t, c, leaderIP, mgmtToken)
	if _, err := mgmt.KV().Put(&consul.KVPair{Key: "acl-test", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("KV write with the management token: %v", err)
	}
	if p, _, err := anon.KV().Get("acl-test", nil); err == nil && p != nil {
		t.Fatal("an anonymous client read a KV value")
	}
	eventually(t, 2*time.Minute, "every agent alive as a member, registered with the agent token", func() error {
		members, err := mgmt.Agent().Members(false)
		if err != nil {
			return err
		}
		alive := 0
		for _, m := range members {
			if m.Status == 1 {
				alive++
			}
		}
		nodes, _, err := mgmt.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if alive != 4 || len(nodes) != 4 {
			return fmt.Errorf("%d alive members, %d catalog nodes, want 4", alive, len(nodes))
		}
		return nil
	})
	eventually(t, time.Minute, "anonymous DNS answers consul.service.consul", func() error {
		m := new(dns.Msg)
		m.SetQuestion("consul.service.consul.", dns.TypeA)
		r, err := dns.Exchange(m, net.JoinHostPort(leaderIP, "8600"))
		if err != nil {
			return err
		}
		if len(r.Answer) != 3 {
			return fmt.Errorf("%d answers, want the 3 servers", len(r.Answer))
		}
		return nil
	})

	// The operator rotates the management token: the old one stops
	// working, the new one (read again) does everything.
	oldMgmt := mgmtToken
	mgmtToken = rotateManagement(t, c, operatorToken, leaderIP, oldMgmt)
	mgmt = aclClient(t, c, leaderIP, mgmtToken)

	// A SIGKILL, then a new scheduler: it bootstraps again to the same end
	// (nothing to redo) and the stored management token still works.
	c.KillScheduler()
	if err := c.startScheduler(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "the restarted scheduler finds the ACLs in place", func() error {
		if n := countInFile(schedLog, aclBootstrappedLine); n < 2 {
			return fmt.Errorf("%d bootstrap lines in the scheduler log, want 2", n)
		}
		return nil
	})
	if got := managementToken(t, c, operatorToken); got != mgmtToken {
		t.Fatal("the management token changed across the scheduler restart")
	}
	if _, _, err := mgmt.KV().Get("acl-test", nil); err != nil {
		t.Fatalf("the management token after the restart: %v", err)
	}
	tasks := runningTasks(t, c)
	collected := collectObservable(t, c)
	stop()
	scanForSecrets(t, workDir, collected, storedSecrets(t, workDir), tasks, map[string]string{"ACL management token (rotated out)": oldMgmt})
}

// rotateManagement rotates the management token with the operator command
// and checks the old one is refused and the new one works.
func rotateManagement(t *testing.T, c *Cluster, operatorToken, ip, old string) string {
	t.Helper()
	var out strings.Builder
	cl, err := operator.NewClient(operator.Location{BaseURL: c.SchedulerURL, OperatorToken: operatorToken, From: "test"}, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&operator.Commands{Client: cl, Out: &out}).ACLRotateManagementToken(context.Background()); err != nil {
		t.Fatalf("acl rotate-management-token: %v", err)
	}
	t.Logf("acl rotate-management-token: %s", strings.TrimSpace(out.String()))
	if strings.Contains(out.String(), old) {
		t.Fatal("the rotate command printed the old token")
	}
	next := managementToken(t, c, operatorToken)
	if next == old || strings.Contains(out.String(), next) {
		t.Fatalf("after the rotation: same token %v, or printed by the command", next == old)
	}
	if _, _, err := aclClient(t, c, ip, old).KV().Get("acl-test", nil); !isStatus(err, 403) {
		t.Fatalf("the rotated-out management token: %v, want 403", err)
	}
	if _, err := aclClient(t, c, ip, next).KV().Put(&consul.KVPair{Key: "acl-rotated", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("KV write with the new management token: %v", err)
	}
	return next
}

func managementToken(t *testing.T, c *Cluster, operatorToken string) string {
	t.Helper()
	u := c.SchedulerURL + "/v1/acl/management-token"
	if resp, err := http.Get(u); err != nil || resp.StatusCode != 401 {
		t.Fatalf("GET %s without the operator token: %v %v, want 401", u, resp.StatusCode, err)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Dcos-Consul-Token", operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.SecretID == "" {
		t.Fatalf("GET %s with the operator token: %d %v", u, resp.StatusCode, err)
	}
	return out.SecretID
}

// aclClient is a client of the agent on ip with token ("": anonymous)
// instead of the management token.
func aclClient(t *testing.T, c *Cluster, ip, token string) *consul.Client {
	t.Helper()
	cfg := consulConfig(t, c, net.JoinHostPort(ip, "8500"))
	cfg.Token = token
	cl, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func isStatus(err error, code int) bool {
	return err != nil && strings.Contains(err.Error(), fmt.Sprint(code))
}

func countInFile(path, s string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), s)
}
