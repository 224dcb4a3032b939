package dev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/operator"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
)

// TestDevTLSTurnedOn: a dev cluster installed with TLS off (set
// explicitly, whatever the default) gets security.tls.enabled=true the
// way a DC/OS user changes an option (Cosmos update: the scheduler
// restarts with the new environment) while a writer puts a key every
// 200 ms through the agents (plain HTTP while an agent serves it, HTTPS
// once it does not; a connection refused by an agent restarting, or
// Consul's 429 "try ... against a different server" from a server
// draining before its restart, goes to the next agent: nothing was
// applied). The update plan shows the rollout's three phases; the
// scheduler is SIGKILLed in the middle of phase 2 and resumes it. Once the
// plan is complete: no write failed, the last acknowledged value is
// there, every server's HTTPS certificate verifies against the
// scheduler's CA and every client's against Consul's CA (auto_encrypt),
// plain HTTP is off everywhere, a plaintext RPC connection to a server is
// closed, and the scheduler reaches Consul over HTTPS (its UI proxy).
//
//	/work/tools/isolated tlson go test -count=1 ./internal/dev/ -run '^TestDevTLSTurnedOn$' -timeout 40m -v
func TestDevTLSTurnedOn(t *testing.T) {
	fc := startFaultCluster(t, 64, 5, 3, config.EnvTLS+"=false")
	tasks, _ := fc.healthy(t, 3, 4*time.Minute)
	var ips []string
	srv := servers(tasks)
	for _, tk := range tasks {
		ips = append(ips, tk.AgentIP)
	}
	token := clusterToken(t, fc.Cluster, consulConfig(t, fc.Cluster, srv[0].AgentIP))
	roots := connectRoots(t, srv[0].AgentIP, token)

	cosmosURL, stopCosmos, err := fc.ServeCosmos()
	if err != nil {
		t.Fatal(err)
	}
	defer stopCosmos()
	opClient, err := operator.NewClient(operator.Location{BaseURL: fc.SchedulerURL, From: "test"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ops := &operator.Commands{Client: opClient, Out: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// TLS off through the package options too, so that the update below
	// changes the option whatever the package's default is.
	if err := ops.UpdateStart(ctx, cosmosURL, "consul", []byte(`{"security": {"tls": {"enabled": false}}}`), false); err != nil {
		t.Fatalf("update start (TLS off): %v", err)
	}
	fc.healthy(t, 3, 4*time.Minute)
	time.Sleep(10 * time.Second) // autopilot's stabilisation before the update

	logFrom := len(schedulerLog(t, fc.opts.WorkDir))
	w := startTLSOnWriter(ctx, ips, token)
	tw := startTaskWatch(ctx, fc.Cluster)
	time.Sleep(3 * time.Second)
	start := time.Now()
	if err := ops.UpdateStart(ctx, cosmosURL, "consul", []byte(`{"security": {"tls": {"enabled": true}}}`), false); err != nil {
		t.Fatalf("update start (TLS on): %v", err)
	}
	if !fc.ConsulTLS() {
		t.Fatal("the option update did not turn TLS on in the scheduler's environment")
	}
	caPEM := ""
	eventually(t, 2*time.Minute, "the scheduler serves its CA", func() error {
		var err error
		caPEM, err = fc.FetchCA(ctx)
		return err
	})
	caPool, err := pki.Pool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	all := caPool.Clone()
	for _, r := range roots {
		all.AppendCertsFromPEM([]byte(r))
	}
	w.setRoots(all)

	// Follow the update plan: its tls-rollout phase through its three
	// steps; SIGKILL the scheduler once phase 2 is under way.
	seen := followRollout(t, fc, "tls", start)
	rollout := time.Since(start)
	for _, n := range []string{"tls-phase-1", "tls-phase-2", "tls-phase-3"} {
		if _, ok := seen[n]; !ok {
			t.Errorf("the update plan never showed %s in progress (seen %v)", n, seen)
		}
	}
	after, _ := fc.healthy(t, 3, 4*time.Minute)
	time.Sleep(3 * time.Second)
	cancel()
	w.wait()
	tw.wait()

	ok, failed, hops, byScheme := w.counts()
	t.Logf("TLS TURNED ON: rollout %.0f s; writes ok %d (%v), failed %d, connections refused and retried at the next agent %d",
		rollout.Seconds(), ok, byScheme, failed, hops)
	judgeFailures(t, w, tw)
	if ok == 0 || byScheme["https"] == 0 {
		t.Errorf("writes ok %d, over HTTPS %d", ok, byScheme["https"])
	}
	if lost := w.lost(all, ips); lost != "" {
		t.Errorf("acknowledged write lost: %s", lost)
	}

	for _, tk := range after {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(tk.AgentIP, "8500"), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("plain HTTP still answers on %s (%s)", tk.AgentIP, tk.Name)
		}
		if isServerTask(tk) {
			checkServerCertificate(t, caPool, tk.AgentIP)
			// gRPC over TLS too: its port was reserved at the relaunch.
			checkVerifiesOn(t, caPool, tk.AgentIP, "8503")
			if !plainRPCClosed(t, net.JoinHostPort(tk.AgentIP, "8300")) {
				t.Errorf("server %s keeps a plaintext RPC connection open", tk.Name)
			}
			continue
		}
		checkVerifiesOn(t, all, tk.AgentIP, "8501")
	}
	eventually(t, time.Minute, "the scheduler's UI proxy reaches Consul over HTTPS", func() error {
		resp, err := http.Get(fc.SchedulerURL + "/consul/v1/catalog/datacenters")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		return nil
	})
	if log := schedulerLog(t, fc.opts.WorkDir); len(log) > logFrom && strings.Contains(log[logFrom:], "cannot read Consul's raft configuration") {
		t.Error("the scheduler could not read Consul's raft configuration during the rollout")
	}
	// The scheduler reads raft over HTTPS now: a server restart through
	// its API passes the quorum gate (a raft read newer than every
	// server's start) and the server comes back.
	tok, err := os.ReadFile(fc.OperatorTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	authed, err := operator.NewClient(operator.Location{BaseURL: fc.SchedulerURL, OperatorToken: strings.TrimSpace(string(tok)), From: "test"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var victim masterTask
	for _, tk := range after {
		if tk.Name == "consul-server-0" {
			victim = tk
		}
	}
	eventually(t, 2*time.Minute, "pod restart consul-server-0 through the quorum gate", func() error {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		defer rcancel()
		return (&operator.Commands{Client: authed, Out: io.Discard}).PodRestart(rctx, victim.Name)
	})
	eventually(t, 3*time.Minute, "consul-server-0 running again", func() error {
		for _, tk := range runningTasks(t, fc.Cluster) {
			if tk.Name == victim.Name && tk.ID != victim.ID {
				return nil
			}
		}
		return errors.New("not restarted yet")
	})
	fc.healthy(t, 3, 4*time.Minute)
}

// connectRoots are Consul's CA roots (which sign the clients'
// auto_encrypt certificates), read over plain HTTP before TLS is on.
func connectRoots(t *testing.T, ip, token string) []string {
	t.Helper()
	var out []string
	eventually(t, time.Minute, "Consul's CA roots", func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(ip, "8500")+"/v1/connect/ca/roots", nil)
		req.Header.Set("X-Consul-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var roots struct{ Roots []struct{ RootCert string } }
		if err := json.NewDecoder(resp.Body).Decode(&roots); err != nil || len(roots.Roots) == 0 {
			return fmt.Errorf("%s: %v, %d roots", resp.Status, err, len(roots.Roots))
		}
		out = nil
		for _, r := range roots.Roots {
			out = append(out, r.RootCert)
		}
		return nil
	})
	return out
}

// readPlan reads one plan from the scheduler's API.
func readPlan(schedulerURL, name string) (plan.Plan, error) {
	var p plan.Plan
	resp, err := http.Get(schedulerURL + "/v1/plans/" + name)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return p, fmt.Errorf("GET /v1/plans/%s: %s", name, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	return p, err
}

// checkVerifiesOn: the TLS listener at ip:port presents a certificate
// that verifies against pool for ip.
func checkVerifiesOn(t *testing.T, pool *x509.CertPool, ip, port string) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", net.JoinHostPort(ip, port),
		&tls.Config{RootCAs: pool, ServerName: ip, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
	if err != nil {
		t.Errorf("TLS on %s:%s verified against the CA: %v", ip, port, err)
		return
	}
	conn.Close()
}

func schedulerLog(t *testing.T, workDir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.WalkDir(workDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "scheduler.log" {
			x, _ := os.ReadFile(p)
			b.Write(x)
		}
		return nil
	})
	return b.String()
}

// tlsOnWriter puts tlson/last = n every 200 ms through one agent: plain
// HTTP while the agent serves it, else HTTPS (once the roots are set). A
// connection refused (an agent restarting) moves the write to the next
// agent at once; a connection the agent reset (its listener closing) has
// the write's outcome read back through the next agent and, when it was
// not applied, retried there. A write fails only on an answer other than
// success, or when no agent takes it.
type tlsOnWriter struct {
	ips   []string
	token string
	// tok, once set, is sent instead of token (an application given a
	// token while ACLs are being turned on).
	tok   atomic.Pointer[string]
	roots atomic.Pointer[x509.CertPool]
	plain *http.Client

	mu       sync.Mutex
	ok, hops int
	// resets counts the connections an agent reset whose write's outcome
	// was then read back (applied or not; a not-applied one is retried).
	resets   int
	lastOK   int
	byScheme map[string]int
	failures []writeFailure
	done     chan struct{}
}

// writeFailure is one failed write: when it was sent, and what failed.
type writeFailure struct {
	at  time.Time
	msg string
}

func (f writeFailure) String() string { return f.at.Format("15:04:05.000") + " " + f.msg }

func startTLSOnWriter(ctx context.Context, ips []string, token string) *tlsOnWriter {
	w := &tlsOnWriter{ips: ips, token: token, byScheme: map[string]int{}, done: make(chan struct{}),
		plain: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}
	go func() {
		defer close(w.done)
		cur := 0
		for i := 1; ctx.Err() == nil; i++ {
			at := time.Now()
			var errs []string
			written := false
			for n := 0; n < len(ips) && !written; n++ {
				ip := ips[cur]
				scheme, err := w.put(ctx, ip, "tlson/last", i)
				switch {
				case err == nil:
					written = true
					w.mu.Lock()
					w.ok++
					w.lastOK = i
					w.byScheme[scheme]++
					w.mu.Unlock()
				case errors.Is(err, syscall.ECONNREFUSED) || retryElsewhere(err):
					w.mu.Lock()
					w.hops++
					w.mu.Unlock()
					cur = (cur + 1) % len(ips)
				case errors.Is(err, syscall.ECONNRESET):
					// The agent reset the connection: its listener closed
					// (its task stopping) with this connection still in
					// the accept queue, the moment after which it would
					// have been refused. The outcome is read back, as a
					// careful application would, through the next agent.
					cur = (cur + 1) % len(ips)
					applied, rerr := w.appliedAt(ctx, ips[cur], "tlson/last", i)
					switch {
					case rerr != nil:
						errs = append(errs, fmt.Sprintf("%s %s: %v; reading it back through %s: %v", scheme, ip, err, ips[cur], rerr))
						n = len(ips)
					case applied:
						written = true
						w.mu.Lock()
						w.ok++
						w.lastOK = i
						w.byScheme[scheme]++
						w.resets++
						w.mu.Unlock()
					default:
						w.mu.Lock()
						w.resets++
						w.mu.Unlock()
					}
				default:
					errs = append(errs, fmt.Sprintf("%s %s: %v", scheme, ip, err))
					cur = (cur + 1) % len(ips)
					n = len(ips) // failed: counted, not retried
				}
			}
			if !written && ctx.Err() == nil {
				if len(errs) == 0 {
					errs = append(errs, "every agent refused the connection")
				}
				w.mu.Lock()
				w.failures = append(w.failures, writeFailure{at, fmt.Sprintf("write %d: %s", i, strings.Join(errs, "; "))})
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *tlsOnWriter) setRoots(p *x509.CertPool) { w.roots.Store(p) }

// setToken makes the writer send tok from its next write on.
func (w *tlsOnWriter) setToken(tok string) { w.tok.Store(&tok) }

// currentToken is the token the writer sends now.
func (w *tlsOnWriter) currentToken() string {
	if p := w.tok.Load(); p != nil {
		return *p
	}
	return w.token
}

// put writes key=v through the agent at ip (see call).
func (w *tlsOnWriter) put(ctx context.Context, ip, key string, v int) (string, error) {
	scheme, answer, err := w.call(ctx, ip, http.MethodPut, "/v1/kv/"+key, strconv.Itoa(v))
	if err == nil && answer != "true" {
		err = fmt.Errorf("200 OK: %s", answer)
	}
	return scheme, err
}

// appliedAt reads key back through the agent at ip (?consistent, see
// call) and reports whether it holds v or a later value.
func (w *tlsOnWriter) appliedAt(ctx context.Context, ip, key string, v int) (bool, error) {
	_, answer, err := w.call(ctx, ip, http.MethodGet, "/v1/kv/"+key+"?consistent&raw", "")
	if err != nil {
		return false, err
	}
	got, err := strconv.Atoi(answer)
	if err != nil {
		return false, fmt.Errorf("the value %q: %w", answer, err)
	}
	return got >= v, nil
}

// call sends method to path through the agent at ip: HTTP on 8500, or
// when that is refused HTTPS on 8501 (once the roots are set). It returns
// the scheme used and the answer's body; an error for a status other than
// 200, ECONNREFUSED when neither port listens.
func (w *tlsOnWriter) call(ctx context.Context, ip, method, path, body string) (string, string, error) {
	answer, err := w.callURL(ctx, w.plain, "http://"+net.JoinHostPort(ip, "8500"), method, path, body)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return "http", answer, err
	}
	roots := w.roots.Load()
	if roots == nil {
		return "http", answer, err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	answer, err = w.callURL(ctx, hc, "https://"+net.JoinHostPort(ip, "8501"), method, path, body)
	return "https", answer, err
}

func (w *tlsOnWriter) callURL(ctx context.Context, hc *http.Client, base, method, path, body string) (string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Consul-Token", w.currentToken())
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	answer := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return answer, fmt.Errorf("%s: %s", resp.Status, answer)
	}
	return answer, nil
}

func (w *tlsOnWriter) wait() { <-w.done }

func (w *tlsOnWriter) counts() (ok, failed, hops int, byScheme map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]int{}
	for k, v := range w.byScheme {
		m[k] = v
	}
	return w.ok, len(w.failures), w.hops, m
}

func (w *tlsOnWriter) failureList() []writeFailure {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]writeFailure(nil), w.failures...)
}

// lost reads the key back (?consistent over HTTPS through any agent): it
// holds the last acknowledged value or a later one.
func (w *tlsOnWriter) lost(roots *x509.CertPool, ips []string) string {
	w.mu.Lock()
	want := w.lastOK
	w.mu.Unlock()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	var errs []string
	for _, ip := range ips {
		req, _ := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(ip, "8501")+"/v1/kv/tlson/last?consistent&raw", nil)
		req.Header.Set("X-Consul-Token", w.currentToken())
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs = append(errs, resp.Status)
			continue
		}
		if got, _ := strconv.Atoi(string(b)); got < want {
			return fmt.Sprintf("tlson/last = %d, last acknowledged %d", got, want)
		}
		return ""
	}
	return "reading it back: " + strings.Join(errs, "; ")
}
