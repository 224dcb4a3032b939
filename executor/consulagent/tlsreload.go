package consulagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// TLSCertInfo names a certificate: its serial (hex) and expiry.
type TLSCertInfo struct {
	Serial   string
	NotAfter time.Time
}

// checkServerCert verifies that certPEM and keyPEM are a pair, that the
// certificate chains to caPEM and is valid at now, and returns it.
func checkServerCert(caPEM, certPEM, keyPEM string, now time.Time) (*x509.Certificate, error) {
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		// tls reports which half is wrong, never the key's bytes.
		return nil, fmt.Errorf("consulagent: the new certificate and key are not a pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("consulagent: the new certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("consulagent: the CA certificate is not PEM")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("consulagent: the new certificate does not verify against the CA: %w", err)
	}
	return leaf, nil
}

// ReloadTLS loads a new server certificate and key (and CA certificate)
// into the running agent, without a restart: the files are written as at
// start (0600, each through a rename), Consul's TLS configurator reloads
// them (what `consul reload` does for TLS: later handshakes on RPC, HTTPS
// and gRPC present the new certificate, open connections go on) and the
// files are removed again. It then checks that the HTTPS API presents the
// new certificate. On an error the agent keeps the certificate it had
// whenever Consul's reload itself failed.
func (a *Agent) ReloadTLS(ctx context.Context, caPEM, certPEM, keyPEM string) (TLSCertInfo, error) {
	if !a.spec.TLS || a.spec.Role != taskspec.RoleServer || a.tlsConf == nil {
		return TLSCertInfo{}, errors.New("consulagent: only a server with TLS reloads a certificate")
	}
	leaf, err := checkServerCert(caPEM, certPEM, keyPEM, time.Now())
	if err != nil {
		return TLSCertInfo{}, err
	}
	info := TLSCertInfo{Serial: leaf.SerialNumber.Text(16), NotAfter: leaf.NotAfter}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	select {
	case <-a.done:
		return TLSCertInfo{}, errors.New("consulagent: the agent has stopped")
	default:
	}
	env := a.env
	env.TLSCACert, env.TLSCert, env.TLSKey = caPEM, certPEM, keyPEM
	if err := writeTLSFiles(a.spec, env); err != nil {
		removeTLSFiles(env, a.log)
		return TLSCertInfo{}, err
	}
	err = a.tlsConf.Update(a.tlsBase)
	removeTLSFiles(env, a.log)
	if err != nil {
		return TLSCertInfo{}, fmt.Errorf("consulagent: Consul did not reload its TLS files: %w", err)
	}
	got, err := a.presentedSerial(ctx)
	if err != nil {
		return info, fmt.Errorf("consulagent: certificate reloaded, but the HTTPS API could not be checked: %w", err)
	}
	if got != info.Serial {
		return info, fmt.Errorf("consulagent: certificate reloaded, but the HTTPS API presents serial %s, not %s", got, info.Serial)
	}
	a.log.Info("TLS certificate reloaded in place", zap.String("serial", info.Serial),
		zap.Time("not_after", info.NotAfter))
	return info, nil
}

// presentedSerial is the serial (hex) of the certificate the agent's own
// HTTPS listener presents now.
func (a *Agent) presentedSerial(ctx context.Context) (string, error) {
	hostPort := strings.TrimPrefix(a.httpURL, "https://")
	if hostPort == a.httpURL {
		return "", errors.New("no HTTPS API")
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // reads which certificate is presented; the chain was verified before loading
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", hostPort)
	if err != nil {
		return "", err
	}
	defer c.Close()
	peers := c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return "", errors.New("no certificate presented")
	}
	return peers[0].SerialNumber.Text(16), nil
}
