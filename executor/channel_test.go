package executor

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// tlsScheduler is a stand-in scheduler on TLS that answers the secrets
// route and counts the requests that reached it.
func tlsScheduler(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var reached atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_ = json.NewEncoder(w).Encode(taskspec.Secrets{GossipKey: testGossipKey})
	}))
	t.Cleanup(srv.Close)
	return srv, &reached
}

func certPEM(srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// An executor whose spec names the scheduler's https channel fetches its
// secrets when the scheduler's certificate verifies against the spec's
// CA, and refuses at once, sending nothing, when it does not: with an
// error that says so and holds no token.
func TestChannelVerifiesTheSchedulerAgainstTheSpecCA(t *testing.T) {
	srv, reached := tlsScheduler(t)
	other, err := pki.NewCA(nil, "another service", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got consulagent.Env
	inner := func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
		got = env
		return nil, nil
	}
	fetch := func(ca string) error {
		spec := taskspec.Spec{Role: taskspec.RoleClient, GossipEncryption: true,
			Secrets: &taskspec.SecretsRef{URL: srv.URL, CACert: ca, Token: "tok-secret"}}
		client, err := channelClient(spec.Secrets.URL, spec.Secrets.CACert)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err = withSecrets(inner, "consul-client-x__1", client)(ctx, spec, consulagent.Env{}, zap.NewNop())
		return err
	}

	start := time.Now()
	err = fetch(other.CertPEM)
	if err == nil || !strings.Contains(err.Error(), "does not verify against the CA this task was given") {
		t.Fatalf("fetch with a CA that did not sign the scheduler's certificate: %v", err)
	}
	if strings.Contains(err.Error(), "tok-secret") {
		t.Fatalf("the error holds the token: %v", err)
	}
	if time.Since(start) > time.Minute {
		t.Fatalf("the refusal took %s: it must not wait out the fetch timeout", time.Since(start))
	}
	if n := reached.Load(); n != 0 || got.GossipKey != "" {
		t.Fatalf("%d requests reached the untrusted scheduler", n)
	}

	if err := fetch(certPEM(srv)); err != nil {
		t.Fatalf("fetch with the scheduler's CA: %v", err)
	}
	if got.GossipKey != testGossipKey || reached.Load() != 1 {
		t.Fatalf("key handed over %v after %d requests", got.GossipKey == testGossipKey, reached.Load())
	}
}

// The client trusts the given CA only: not the system's roots, and there
// is no https client without a CA.
func TestChannelClientNeedsItsCAForHTTPS(t *testing.T) {
	srv, _ := tlsScheduler(t)
	if _, err := channelClient(srv.URL, ""); err == nil || !strings.Contains(err.Error(), "no CA certificate") {
		t.Fatalf("https without a CA: %v", err)
	}
	if _, err := channelClient("http://127.0.0.1:1", certPEM(srv)); err == nil {
		t.Fatal("plain http with a CA was accepted")
	}
	c, err := channelClient("http://127.0.0.1:1", "")
	if err != nil {
		t.Fatalf("a plain URL of an older spec: %v", err)
	}
	if tr := c.Transport.(*http.Transport); tr.Proxy != nil || (tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify) {
		t.Fatal("the client goes through a proxy or skips verification")
	}
	c, _ = channelClient(srv.URL, certPEM(srv))
	if tr := c.Transport.(*http.Transport); tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.RootCAs == nil {
		t.Fatal("the https client does not verify against its CA only")
	}
}

// A MESSAGE's channel: a TLS renewal MESSAGE naming an https scheduler
// whose certificate the MESSAGE's CA does not verify sends nothing.
func TestRenewalMessageChannelVerifies(t *testing.T) {
	srv, reached := tlsScheduler(t)
	other, _ := pki.NewCA(nil, "another service", time.Now())
	client, err := channelClient(srv.URL, other.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = reportTLSRenewal(ctx, client, taskspec.SecretsRef{URL: srv.URL, Token: "tok"}, "consul-server-0__1", taskspec.TLSRenewReport{Serial: "01"})
	if err == nil || !strings.Contains(err.Error(), "does not verify") || reached.Load() != 0 {
		t.Fatalf("report to an untrusted scheduler: %v (%d requests reached it)", err, reached.Load())
	}
}
