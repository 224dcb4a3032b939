package dev

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/operator"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// TestDevSecurityDefaults checks issue 10's defaults on a dev cluster:
// gossip is encrypted and an agent with another key cannot join; every
// unauthenticated mutating API call gets 401 and changes nothing; every
// listener of dev is on 127.0.0.0/8; and none of the service's secrets
// shows up in the scheduler log, the executor logs, /master/state, the
// agents' /state, the Marathon env or any scheduler API answer.
func TestDevSecurityDefaults(t *testing.T) {
	// Serial: no write may fail during the gossip key rotation.
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	workDir := t.TempDir()
	opts := Options{
		Agents: 5, Servers: 3, WorkDir: workDir, Binary: binary,
		MasterIP: "127.6.0.1", MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("dev"),
	}
	c, _, stop := startLeading(t, opts, 4*time.Minute)
	tasks := checkCluster(t, c)
	srv := servers(tasks)

	// The operator token file: the owner's only.
	fi, err := os.Stat(c.OperatorTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", c.OperatorTokenFile(), fi.Mode().Perm())
	}
	tokenBytes, _ := os.ReadFile(c.OperatorTokenFile())
	operatorToken := strings.TrimSpace(string(tokenBytes))

	// Gossip is encrypted with exactly one key, the scheduler's.
	cc := consulClient(t, c, srv[0].AgentIP)
	self, err := cc.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if enc := fmt.Sprint(self["Stats"]["serf_lan"].(map[string]any)["encrypted"]); enc != "true" {
		t.Fatalf("serf_lan encrypted = %s, want true", enc)
	}
	rings, err := cc.Operator().KeyringList(nil)
	if err != nil {
		t.Fatal(err)
	}
	var gossipKey string
	for _, r := range rings {
		if r.WAN || len(r.Keys) != 1 {
			continue
		}
		for k := range r.Keys {
			gossipKey = k
		}
	}
	if gossipKey == "" {
		t.Fatalf("no single LAN gossip key: %+v", rings)
	}

	// ACLs are on by default, default deny: an anonymous KV read gets
	// 403 (cc, with the management token, wrote the key).
	if _, err := cc.KV().Put(&consul.KVPair{Key: "secured", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("KV write with the management token: %v", err)
	}
	if p, _, err := aclClient(t, c, srv[0].AgentIP, "").KV().Get("secured", nil); !isStatus(err, 403) || p != nil {
		t.Fatalf("anonymous KV read: %v %v, want 403", p, err)
	}

	checkWrongKeyCannotJoin(t, c, srv[0].AgentIP)
	checkMutatingRoutesNeedTheToken(t, c, operatorToken)
	checkLoopbackListeners(t, workDir)
	checkExecutorChannel(t, c, workDir, tasks)
	newKey := checkKeyringRotation(t, c, tasks, gossipKey)

	collected := collectObservable(t, c)
	stop()
	sec := storedSecrets(t, workDir)
	if sec.GossipKey() != newKey || len(sec.GossipKeys) != 1 || sec.RotatingTo != "" || sec.OperatorToken != operatorToken {
		t.Fatalf("the cluster's key or the token file is not what the scheduler stored")
	}
	scanForSecrets(t, workDir, collected, sec, tasks, map[string]string{"rotated-out gossip key": gossipKey})
}

// collectObservable gathers what an observer of the running cluster can
// read: /master/state, every agent's /state, every scheduler API read, the
// scheduler's env and the rendered Marathon app.
func collectObservable(t *testing.T, c *Cluster) map[string][]byte {
	t.Helper()
	collected := map[string][]byte{}
	collected["/master/state"] = httpBody(t, c.Sim.MasterURL()+"/master/state")
	for _, a := range c.Sim.Agents() {
		u := "http://" + net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) + "/state"
		collected[u] = httpBody(t, u)
	}
	for _, path := range apiReadPaths(t, c) {
		collected["scheduler "+path] = httpBody(t, c.SchedulerURL+path)
	}
	collected["scheduler env"] = []byte(strings.Join(c.SchedulerEnv(0), "\n"))
	if b, err := os.ReadFile("../../marathon.json"); err == nil {
		collected["marathon.json"] = b
	} else {
		t.Errorf("the rendered Marathon app: %v", err)
	}
	return collected
}

// storedSecrets reads the secrets from the (stopped) scheduler's store.
func storedSecrets(t *testing.T, workDir string) secrets.Secrets {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Dir: filepath.Join(workDir, "scheduler"), Service: "consul"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Get(ctx, secrets.Key)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var sec secrets.Secrets
	if err := json.Unmarshal(raw, &sec); err != nil {
		t.Fatal(err)
	}
	return sec
}

// scanForSecrets adds every file dev wrote to collected, except the
// places meant to hold a secret (the scheduler's state store, the token
// file, Consul's data directories with its keyring; those must be their
// owner's only), and fails for any secret of sec found in any of them.
func scanForSecrets(t *testing.T, workDir string, collected map[string][]byte, sec secrets.Secrets, tasks []masterTask, more map[string]string) {
	t.Helper()
	plain := map[string]string{"gossip key": sec.GossipKey(), "operator token": sec.OperatorToken,
		"executor key":         base64.StdEncoding.EncodeToString(sec.ExecutorKey),
		"ACL management token": sec.ManagementToken, "ACL scheduler token": sec.SchedulerToken, "ACL agent token": sec.AgentToken}
	for k, v := range more {
		plain[k] = v
	}
	needles := secretForms(plain)
	// The CA key: each line of its PEM body (a leak in any line
	// wrapping, or JSON-escaped, still shows whole lines).
	for i, line := range pemBodyLines(sec.CA.KeyPEM) {
		needles[fmt.Sprintf("CA key (line %d)", i+1)] = line
	}
	for _, task := range tasks {
		needles["credential of "+task.ID] = sec.Credential(task.ID)
	}
	consulData := map[string][]byte{}
	err := filepath.WalkDir(workDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(workDir, path)
		// The servers' copies of the secrets on their volumes (lost
		// scheduler state, docs/security.md) hold them by design.
		if rel == "scheduler" || rel == "operator-token" || d.Name() == taskspec.SecretsCopyFile {
			checkPrivate(t, path)
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			// Consul's own data (the servers' raft log and snapshots)
			// holds its ACL tables: ACL tokens are expected there, and
			// nothing else of ours.
			if strings.Contains(rel, "/consul-data/") || strings.Contains(rel, "/volumes/") {
				consulData[rel] = b
			} else {
				collected[rel] = b
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs int
	for name := range collected {
		if strings.HasSuffix(name, "stdout") || strings.HasSuffix(name, "stderr") || strings.HasSuffix(name, ".log") {
			logs++
		}
	}
	if logs < 6 {
		t.Fatalf("collected only %d log files (want the scheduler's and every executor's): %v", logs, keys(collected))
	}
	for name, b := range collected {
		for what, needle := range needles {
			if needle != "" && bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s shows the %s", name, what)
			}
		}
		// Any private key at all: the servers' TLS keys (issued at each
		// launch and never stored, so not known here) included.
		if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
			t.Errorf("%s shows a PEM private key", name)
		}
	}
	for name, b := range consulData {
		for what, needle := range needles {
			if needle != "" && !strings.HasPrefix(what, "ACL ") && bytes.Contains(b, []byte(needle)) {
				t.Errorf("Consul's data file %s holds the %s", name, what)
			}
		}
	}
	if len(consulData) == 0 {
		t.Error("no Consul data file was scanned")
	}
	t.Logf("scanned %d documents (%d log files) and %d Consul data files for %d secret forms", len(collected), logs, len(consulData), len(needles))
}

// secretForms adds the encodings a secret may leak in.
func secretForms(in map[string]string) map[string]string {
	out := map[string]string{}
	for what, v := range in {
		out[what] = v
		if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) > 0 {
			out[what+" (hex)"] = hex.EncodeToString(b)
			out[what+" (base64url)"] = base64.RawURLEncoding.EncodeToString(b)
		}
		if q, _ := json.Marshal(v); string(q) != `"`+v+`"` {
			out[what+" (JSON-escaped)"] = strings.Trim(string(q), `"`)
		}
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkPrivate: no file at or under root is open to group or others.
func checkPrivate(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s holds a secret and has mode %04o", path, fi.Mode().Perm())
		}
		return nil
	})
}

func httpBody(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// getOK is nil when a GET of u answers 200, an error naming the status
// otherwise (for eventually).
func getOK(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

// apiReadPaths: every GET route of the scheduler API, per pod and
// endpoint as listed.
func apiReadPaths(t *testing.T, c *Cluster) []string {
	paths := []string{"/v1/plans", "/v1/plans/deploy", "/v1/pod", "/v1/pod/status", "/v1/endpoints", "/v1/health",
		"/v1/state/frameworkId", "/metrics", taskspec.SecretsPath}
	var pods []string
	_ = json.Unmarshal(httpBody(t, c.SchedulerURL+"/v1/pod"), &pods)
	for _, p := range pods {
		paths = append(paths, "/v1/pod/"+p+"/info", "/v1/pod/"+p+"/status")
	}
	var eps []string
	_ = json.Unmarshal(httpBody(t, c.SchedulerURL+"/v1/endpoints"), &eps)
	for _, e := range eps {
		paths = append(paths, "/v1/endpoints/"+e)
	}
	if len(pods) < 4 || len(eps) == 0 {
		t.Errorf("the API lists %d pods and %d endpoints", len(pods), len(eps))
	}
	return paths
}

// checkWrongKeyCannotJoin starts a Consul client with a fresh key next to
// the cluster and checks it never becomes a member.
func checkWrongKeyCannotJoin(t *testing.T, c *Cluster, serverIP string) {
	t.Helper()
	key, err := secrets.NewGossipKey(nil2())
	if err != nil {
		t.Fatal(err)
	}
	spec := taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "intruder", Datacenter: "dc1",
		Ports:   taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: -1, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: -1},
		DataDir: "consul-data", JoinAddrs: []string{net.JoinHostPort(serverIP, "8301")}, LogLevel: "WARN",
		GossipEncryption: true, Secrets: &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "unused"}}
	a, err := consulagent.Start(context.Background(), spec, consulagent.Env{BindIP: "127.6.1.1", Sandbox: t.TempDir(), GossipKey: key}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Ready(ctx); err == nil {
		t.Fatal("an agent with another gossip key joined the cluster")
	}
	members, err := consulClient(t, c, serverIP).Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.Name == "intruder" {
			t.Fatalf("the agent with the wrong key is a member: %+v", m)
		}
	}
}

func nil2() io.Reader { return cryptoRand{} }

type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.ReadFull(f, p)
}

// checkMutatingRoutesNeedTheToken: every mutating method on every route
// (the known ones and any other) answers 401 without the operator token,
// and nothing changes; the token is accepted.
func checkMutatingRoutesNeedTheToken(t *testing.T, c *Cluster, token string) {
	t.Helper()
	before := runningTasks(t, c)
	paths := []string{"/v1/pod/consul-server-0/restart", "/v1/pod/consul-server-0/replace", "/v1/pod/consul-server-1/replace",
		"/v1/plans/deploy/restart", "/v1/plans/deploy/interrupt", "/v1/plans/deploy/continue", "/v1/plans/deploy/start",
		"/v1/keyring/rotate", "/v1/acl/management-token/rotate", "/v1/pod", "/v1/health", "/anything", "/ui/", "/consulx/v1/kv/x"}
	for _, p := range paths {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			for _, auth := range []string{"", "Bearer wrong", "token=wrong"} {
				req, _ := http.NewRequest(m, c.SchedulerURL+p, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with %q: %d, want 401", m, p, auth, resp.StatusCode)
				}
			}
		}
	}
	time.Sleep(2 * time.Second)
	after := runningTasks(t, c)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("unauthenticated calls changed the tasks:\n%v\n%v", before, after)
	}
	req, _ := http.NewRequest(http.MethodPost, c.SchedulerURL+"/v1/pod/nope/restart", nil)
	req.Header.Set("X-Dcos-Consul-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST with the operator token to an unknown pod: %d, want 404 (the token passes)", resp.StatusCode)
	}
}

// checkLoopbackListeners: every TCP listener of this test process (the
// simulator, Mesos-DNS), the scheduler and the executors is on 127/8.
func checkLoopbackListeners(t *testing.T, workDir string) {
	t.Helper()
	inodes := map[string]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if pid != os.Getpid() && exe != binary && !strings.HasPrefix(exe, workDir+"/") {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	var listening int
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			udp := strings.Contains(file, "udp")
			if !udp && fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			if udp && fields[3] != "07" { // an unconnected UDP socket
				continue
			}
			listening++
			ip := procNetIP(fields[1])
			if ip == nil || !ip.IsLoopback() {
				t.Errorf("a dev process listens on %s (%s)", fields[1], file)
			}
		}
		f.Close()
	}
	if listening < 10 {
		t.Errorf("found only %d listeners of dev's processes: the check did not see them", listening)
	}
}

// procNetIP decodes the address of a /proc/net/{tcp,udp}[6] line.
func procNetIP(addrPort string) net.IP {
	h, _, ok := strings.Cut(addrPort, ":")
	if !ok {
		return nil
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	// Each 32-bit word is in host (little-endian) order.
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b)
}

// checkKeyringRotation rotates the gossip key with the operator command
// while a writer keeps writing through a client agent (no write may fail),
// then checks every agent holds only the new key, all are alive, and a
// restarted server rejoins with it. It returns the new key.
func checkKeyringRotation(t *testing.T, c *Cluster, tasks []masterTask, oldKey string) string {
	t.Helper()
	var clientIP string
	for _, task := range tasks {
		if strings.HasPrefix(task.Name, "consul-client-") {
			clientIP = task.AgentIP
		}
	}
	kv := consulClient(t, c, clientIP).KV()
	stop := make(chan struct{})
	type result struct {
		ok, failed int
		last       error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		for i := 0; ; i++ {
			select {
			case <-stop:
				res <- r
				return
			default:
			}
			if _, err := kv.Put(&consul.KVPair{Key: fmt.Sprintf("rotation/%d", i), Value: []byte("v")}, nil); err != nil {
				r.failed++
				r.last = err
			} else {
				r.ok++
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	loc, err := operator.Locate(c.SchedulerURL, "consul", operator.LookupEnv(func(k string) (string, bool) {
		if k == operator.EnvTokenFile {
			return c.OperatorTokenFile(), true
		}
		return "", false
	}))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := operator.NewClient(loc, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	start := time.Now()
	if err := (&operator.Commands{Client: cl, Out: &out}).KeyringRotate(context.Background()); err != nil {
		t.Fatalf("keyring rotate: %v", err)
	}
	t.Logf("keyring rotate in %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out.String()))
	time.Sleep(time.Second)
	close(stop)
	r := <-res
	if r.failed > 0 || r.ok < 10 {
		t.Fatalf("writer during the rotation: %d ok, %d failed (last: %v)", r.ok, r.failed, r.last)
	}
	t.Logf("writer during the rotation: %d writes, none failed", r.ok)

	srv := servers(tasks)
	var newKey string
	for _, s := range srv {
		// The list is a serf query to every agent: on a loaded machine one
		// may not answer in time ("4/5 nodes reported success"); only
		// such a failed query is asked again, its answer is checked below.
		var rings []*consul.KeyringResponse
		eventually(t, time.Minute, "the keyring list through "+s.Name, func() error {
			var err error
			rings, err = consulClient(t, c, s.AgentIP).Operator().KeyringList(nil)
			return err
		})
		for _, ring := range rings {
			if ring.WAN {
				continue
			}
			if len(ring.Keys) != 1 || len(ring.PrimaryKeys) != 1 {
				t.Fatalf("LAN keyring after the rotation: %d keys, %d primaries, want 1", len(ring.Keys), len(ring.PrimaryKeys))
			}
			for k := range ring.Keys {
				if k == oldKey {
					t.Fatal("the old key is still installed")
				}
				if n := ring.Keys[k]; n != ring.NumNodes {
					t.Fatalf("the new key is on %d of %d nodes", n, ring.NumNodes)
				}
				newKey = k
			}
		}
	}
	if strings.Contains(out.String(), newKey) || strings.Contains(out.String(), oldKey) {
		t.Fatal("the rotate command printed a key")
	}
	// A server restarted after the rotation rejoins with the new key.
	victim := srv[len(srv)-1]
	req, _ := http.NewRequest(http.MethodPost, c.SchedulerURL+"/v1/pod/"+victim.Name+"/restart", nil)
	req.Header.Set("X-Dcos-Consul-Token", loc.OperatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("restart %s: %v %v", victim.Name, resp, err)
	}
	resp.Body.Close()
	eventually(t, 3*time.Minute, victim.Name+" restarted and every agent alive", func() error {
		var again bool
		for _, task := range runningTasks(t, c) {
			if task.Name == victim.Name && task.ID != victim.ID {
				again = true
			}
		}
		if !again {
			return fmt.Errorf("%s not relaunched yet", victim.Name)
		}
		members, err := consulClient(t, c, srv[0].AgentIP).Agent().Members(false)
		if err != nil {
			return err
		}
		alive := 0
		for _, m := range members {
			if m.Status == 1 {
				alive++
			}
		}
		if alive != len(tasks) {
			return fmt.Errorf("%d alive members, want %d", alive, len(tasks))
		}
		return nil
	})
	return newKey
}

// pemBodyLines are the base64 lines of a PEM block.
func pemBodyLines(p string) []string {
	var out []string
	for _, l := range strings.Split(p, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}
