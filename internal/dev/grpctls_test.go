package dev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// checkDevGRPCTLS: in a dev cluster with TLS, the scheduler advertises
// gRPC over TLS (grpc-tls in /v1/endpoints, on every agent) and no
// plaintext gRPC; every server answers gRPC over TLS on the gRPC TLS port
// with a certificate that verifies against the scheduler's CA (pool) as
// server.<dc>.consul, and a client with its auto_encrypt certificate,
// which verifies against Consul's CA roots; plaintext gRPC on that port,
// and TLS without the right CA, get no answer.
func checkDevGRPCTLS(t *testing.T, c *Cluster, tasks []masterTask, pool *x509.CertPool, client *consul.Client) {
	t.Helper()
	var names []string
	_ = json.Unmarshal(httpBody(t, c.SchedulerURL+"/v1/endpoints"), &names)
	if !slices.Contains(names, "grpc-tls") || slices.Contains(names, "grpc") {
		t.Errorf("/v1/endpoints = %v: want grpc-tls and no plaintext grpc", names)
	}
	var ep struct {
		Address []string `json:"address"`
		VIP     string   `json:"vip"`
	}
	port := strconv.Itoa(config.DefaultGRPCTLSPort)
	eventually(t, time.Minute, "/v1/endpoints/grpc-tls lists every agent", func() error {
		ep.Address = nil
		if err := json.Unmarshal(httpBody(t, c.SchedulerURL+"/v1/endpoints/grpc-tls"), &ep); err != nil {
			return err
		}
		for _, tk := range tasks {
			if !slices.Contains(ep.Address, net.JoinHostPort(tk.AgentIP, port)) {
				return fmt.Errorf("%s (%s:%s) not in %v", tk.Name, tk.AgentIP, port, ep.Address)
			}
		}
		return nil
	})
	if ep.VIP != "consul.consul.l4lb.thisdcos.directory:"+port {
		t.Errorf("/v1/endpoints/grpc-tls vip = %q", ep.VIP)
	}

	var clientIP string
	for _, tk := range tasks {
		if isServerTask(tk) {
			addr := net.JoinHostPort(tk.AgentIP, port)
			// A raw TLS handshake checking the certificate, then gRPC.
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
				&tls.Config{RootCAs: pool, ServerName: "server.dc1.consul", NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Errorf("TLS to the gRPC TLS port of %s, verified against the scheduler's CA: %v", tk.Name, err)
				continue
			}
			conn.Close()
			checkGRPCOverTLS(t, addr, pool, "server.dc1.consul")
		} else {
			clientIP = tk.AgentIP
		}
	}
	if clientIP == "" {
		return
	}
	roots, _, err := client.Connect().CARoots(nil)
	if err != nil {
		t.Fatalf("Consul's CA roots: %v", err)
	}
	consulCA := x509.NewCertPool()
	for _, r := range roots.Roots {
		consulCA.AppendCertsFromPEM([]byte(r.RootCertPEM))
	}
	checkGRPCOverTLS(t, net.JoinHostPort(clientIP, port), consulCA, clientIP)
}

// checkGRPCOverTLS calls Consul's gRPC server at addr for the gRPC health
// service, which Consul does not register: Unimplemented is its answer
// (a gRPC exchange), any other error means no gRPC server answered. Over
// TLS verified against roots as serverName it must answer; in plaintext,
// or over TLS against an empty root set, it must not.
func checkGRPCOverTLS(t *testing.T, addr string, roots *x509.CertPool, serverName string) {
	t.Helper()
	call := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if err := call(credentials.NewTLS(cfg)); err != nil && status.Code(err) != codes.Unimplemented {
		t.Errorf("gRPC over TLS to %s as %s: %v", addr, serverName, err)
	}
	if err := call(insecure.NewCredentials()); err == nil || status.Code(err) == codes.Unimplemented {
		t.Errorf("plaintext gRPC to the gRPC TLS port %s got an answer (%v)", addr, err)
	}
	wrong := cfg.Clone()
	wrong.RootCAs = x509.NewCertPool()
	if err := call(credentials.NewTLS(wrong)); err == nil || status.Code(err) == codes.Unimplemented {
		t.Errorf("gRPC over TLS to %s verified without the CA (%v)", addr, err)
	}
}
