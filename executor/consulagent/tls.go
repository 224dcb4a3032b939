package consulagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// tlsDir is where, in the sandbox, the agent's TLS files are written for
// Consul to read at start (Consul 1.16 takes certificates as files only).
// They exist only while the agent starts: removeTLSFiles deletes them once
// Consul has loaded them, so the server key is not readable through the
// Mesos agent's /files API for the task's life.
const tlsDir = "tls"

// TLSFiles are the paths of the agent's TLS files in sandbox.
type TLSFiles struct{ CA, Cert, Key string }

func tlsFiles(sandbox string) TLSFiles {
	d := filepath.Join(sandbox, tlsDir)
	return TLSFiles{CA: filepath.Join(d, "ca.pem"), Cert: filepath.Join(d, "server.pem"), Key: filepath.Join(d, "server-key.pem")}
}

// checkTLS says what the agent of spec misses to run with TLS.
func checkTLS(spec taskspec.Spec, env Env) error {
	if !spec.TLS {
		return nil
	}
	if env.TLSCACert == "" {
		return errors.New("consulagent: the task needs TLS but has no CA certificate")
	}
	if spec.Role == taskspec.RoleServer && (env.TLSCert == "" || env.TLSKey == "") {
		return errors.New("consulagent: the server needs TLS but has no certificate and key")
	}
	if spec.Ports.HTTPS <= 0 {
		return errors.New("consulagent: the task needs TLS but has no HTTPS port")
	}
	return nil
}

// tlsConfig is the agent's TLS settings: RPC encrypted and verified both
// ways, servers' names checked (server.<dc>.<domain>), the API over HTTPS
// only, gRPC over TLS on the spec's gRPC TLS port (plaintext gRPC only if
// the spec enables ports.grpc). Servers use the certificate the scheduler
// issued and sign the clients' (auto_encrypt.allow_tls); clients get
// theirs from the servers (auto_encrypt.tls) at start, through
// autoEncryptHosts.
func tlsConfig(spec taskspec.Spec, env Env, cfg map[string]any) {
	f := tlsFiles(env.Sandbox)
	defaults := map[string]any{"ca_file": f.CA, "verify_outgoing": true, "tls_min_version": "TLSv1_2"}
	rpc := map[string]any{"verify_server_hostname": true}
	// gRPC (xDS for Envoy, peering) on ports.grpc_tls: like the HTTPS
	// API, callers need no certificate of their own (Envoy sidecars
	// present none; ACL tokens authorise them).
	grpc := map[string]any{"verify_incoming": false}
	if spec.Role == taskspec.RoleServer {
		defaults["cert_file"], defaults["key_file"] = f.Cert, f.Key
		// Clients present their auto_encrypt certificate; a caller
		// without one is refused.
		rpc["verify_incoming"] = true
		cfg["auto_encrypt"] = map[string]any{"allow_tls": true}
	} else {
		// The certificate names the agent's address too, so that its
		// HTTPS API verifies (against Consul's CA) where callers reach it.
		cfg["auto_encrypt"] = map[string]any{"tls": true, "ip_san": []string{env.BindIP}}
		// A client has no certificate file: its gRPC TLS listener serves
		// the auto_encrypt certificate, which Consul 1.16 counts as gRPC
		// TLS only with use_auto_cert (tlsutil GRPCServerUseTLS).
		grpc["use_auto_cert"] = true
		if len(env.AutoEncryptHosts) > 0 {
			// Consul asks these servers for the client's certificate before
			// it joins (it cannot learn them from gossip yet).
			cfg["retry_join"] = env.AutoEncryptHosts
		}
	}
	cfg["tls"] = map[string]any{
		"defaults":     defaults,
		"internal_rpc": rpc,
		// The HTTPS API does not ask callers for a certificate: ACLs
		// authorise them.
		"https": map[string]any{"verify_incoming": false},
		"grpc":  grpc,
	}
	ports := cfg["ports"].(map[string]any)
	ports["https"] = spec.Ports.HTTPS
	if spec.Ports.GRPCTLS > 0 {
		ports["grpc_tls"] = spec.Ports.GRPCTLS
	}
	if spec.TLSRollout == "" {
		ports["http"] = -1
		return
	}
	rolloutTLS(spec, defaults, rpc)
}

// rolloutTLS relaxes the settings of tlsConfig while TLS is being turned
// on in a running cluster (Consul's guide for an existing datacenter):
// plain HTTP stays on (ports.http as the spec says) for callers not on
// HTTPS yet, and a server accepts plaintext RPC from agents not restarted
// yet. In the accept phase a server does not send TLS either: the servers
// not restarted yet have no certificate to answer it with.
func rolloutTLS(spec taskspec.Spec, defaults, rpc map[string]any) {
	if spec.Role == taskspec.RoleServer {
		rpc["verify_incoming"] = false
	}
	if spec.TLSRollout == taskspec.TLSAccept {
		defaults["verify_outgoing"] = false
		rpc["verify_server_hostname"] = false
	}
}

// writeTLSFiles writes the agent's TLS files, mode 0600 in a 0700
// directory, each through a rename.
func writeTLSFiles(spec taskspec.Spec, env Env) error {
	if !spec.TLS {
		return nil
	}
	f := tlsFiles(env.Sandbox)
	files := map[string]string{f.CA: caBundle(spec, env)}
	if spec.Role == taskspec.RoleServer {
		files[f.Cert], files[f.Key] = env.TLSCert, env.TLSKey
	}
	return writeSecretFiles(files)
}

// writeSecretFiles writes each path's content 0600, through a rename,
// in a directory it creates 0700.
func writeSecretFiles(files map[string]string) error {
	for path, v := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("consulagent: TLS directory: %w", err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(v), 0o600); err != nil {
			return fmt.Errorf("consulagent: writing %s: %w", filepath.Base(path), err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("consulagent: writing %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

// caBundle is the agent's ca_file: its service's CA certificate and, for
// a server, the other datacenters' CA certificates it trusts
// (spec.TLSTrustedCAs), so that it verifies their servers on WAN RPC
// (verify_outgoing, verify_server_hostname) and they it (verify_incoming).
func caBundle(spec taskspec.Spec, env Env) string {
	ca := env.TLSCACert
	if spec.Role != taskspec.RoleServer || spec.TLSTrustedCAs == "" {
		return ca
	}
	if !strings.HasSuffix(ca, "\n") {
		ca += "\n"
	}
	return ca + spec.TLSTrustedCAs
}

// removeTLSFiles deletes the TLS files once Consul has read them.
func removeTLSFiles(env Env, log *zap.Logger) {
	f := tlsFiles(env.Sandbox)
	for _, p := range []string{f.Key, f.Cert, f.CA} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			log.Warn("could not remove a TLS file after the agent loaded it", zap.String("file", p), zap.Error(err))
		}
	}
}

// resolveAutoEncryptHosts are the servers a client with TLS asks for its
// certificate: the scheduler's known server addresses and the Mesos-DNS
// names resolved with the task's resolver (Consul would use the system
// one), as ip:port. It waits, until ctx ends, for at least one.
func resolveAutoEncryptHosts(ctx context.Context, spec taskspec.Spec, r Resolver, log *zap.Logger) ([]string, error) {
	for attempt := 1; ; attempt++ {
		seen := map[string]bool{}
		for _, a := range spec.JoinAddrs {
			seen[a] = true
		}
		for _, n := range spec.JoinDNSNames {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ips, err := r.LookupIPAddr(rctx, n)
			cancel()
			if err != nil {
				continue
			}
			for _, ip := range ips {
				seen[net.JoinHostPort(ip.IP.String(), strconv.Itoa(spec.Ports.SerfLAN))] = true
			}
		}
		if len(seen) > 0 {
			out := make([]string, 0, len(seen))
			for a := range seen {
				out = append(out, a)
			}
			sort.Strings(out)
			return out, nil
		}
		if attempt == 1 || attempt%15 == 0 {
			log.Info("no Consul server known yet to ask for the client's TLS certificate (auto_encrypt); waiting",
				zap.Strings("names", spec.JoinDNSNames))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("consulagent: no Consul server to ask for the client's TLS certificate: %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}
