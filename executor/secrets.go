package executor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// secretsFetchTimeout bounds how long a task waits for its secrets: the
// scheduler may be failing over (Marathon restarts it elsewhere), and a
// task that cannot get its key fails, to be relaunched with the new
// scheduler's address.
const secretsFetchTimeout = 3 * time.Minute

// withSecrets wraps start: before the Consul agent starts, the executor
// trades the task's credential (from TaskInfo.data) for its secrets over
// the scheduler API, and hands them to the agent in memory only.
func withSecrets(start startFunc, taskID string, client *http.Client) startFunc {
	return func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
		if spec.Secrets == nil {
			return start(ctx, spec, env, log)
		}
		if spec.Secrets.CACert == "" {
			log.Warn("the task spec names the scheduler's plain API (a spec from a scheduler from before the TLS executor channel): the secrets cross the network unencrypted",
				zap.String("scheduler", spec.Secrets.URL))
		}
		fctx, cancel := context.WithTimeout(ctx, secretsFetchTimeout)
		defer cancel()
		var onLost func(context.Context) error
		if spec.Role == taskspec.RoleServer {
			// A scheduler that lost its state relaunched this server onto
			// its volume: the volume's copy gives the secrets back.
			onLost = func(ctx context.Context) error {
				return presentCopy(ctx, client, spec, env.Sandbox, spec.Secrets.URL, taskID, log)
			}
		}
		sec, err := fetchSecrets(fctx, client, *spec.Secrets, taskID, log, onLost)
		if err != nil {
			return nil, err
		}
		keepCopy(spec, env.Sandbox, sec, log)
		if spec.GossipEncryption {
			if err := taskspec.ValidGossipKey(sec.GossipKey); err != nil {
				return nil, fmt.Errorf("the scheduler's answer for task %s: %w", taskID, err)
			}
			env.GossipKey = sec.GossipKey
			env.GossipKeys = sec.GossipKeys
			for _, k := range env.GossipKeys {
				if err := taskspec.ValidGossipKey(k); err != nil {
					return nil, fmt.Errorf("the scheduler's answer for task %s: keyring: %w", taskID, err)
				}
			}
		}
		if spec.TLS {
			if sec.TLSCACert == "" || (spec.Role == taskspec.RoleServer && (sec.TLSCert == "" || sec.TLSKey == "")) {
				return nil, fmt.Errorf("the scheduler's answer for task %s has no TLS certificate", taskID)
			}
			env.TLSCACert, env.TLSCert, env.TLSKey = sec.TLSCACert, sec.TLSCert, sec.TLSKey
		}
		if spec.ACL {
			if sec.ACLAgentToken == "" {
				return nil, fmt.Errorf("the scheduler's answer for task %s has no ACL agent token", taskID)
			}
			env.ACLAgentToken = sec.ACLAgentToken
		}
		if spec.ACLReplication {
			if sec.ACLReplicationToken == "" {
				return nil, fmt.Errorf("the scheduler's answer for task %s has no ACL replication token (a secondary datacenter's server)", taskID)
			}
			env.ACLReplicationToken = sec.ACLReplicationToken
		}
		return start(ctx, spec, env, log)
	}
}

// fetchSecrets asks the scheduler for the task's secrets until it answers
// or ctx ends. Every failure is retried (the scheduler may be restarting,
// or may not have published the task's record yet); the token never
// appears in a log line or an error.
//
// onLost (nil: none) runs when the scheduler answers that its secrets
// are lost (taskspec.SecretsLost), at most every 20 s.
func fetchSecrets(ctx context.Context, client *http.Client, ref taskspec.SecretsRef, taskID string, log *zap.Logger, onLost func(context.Context) error) (taskspec.Secrets, error) {
	u := strings.TrimRight(ref.URL, "/") + taskspec.SecretsPath + "?task_id=" + url.QueryEscape(taskID)
	delay := 200 * time.Millisecond
	var last error
	var lastPresented time.Time
	for attempt := 1; ; attempt++ {
		s, err := fetchOnce(ctx, client, u, ref.Token)
		if err == nil {
			log.Info("task secrets received from the scheduler", zap.String("scheduler", ref.URL), zap.Int("attempt", attempt),
				zap.Bool("tls", strings.HasPrefix(ref.URL, "https:")))
			return s, nil
		}
		last = err
		var untrusted errUntrusted
		if errors.As(err, &untrusted) {
			return taskspec.Secrets{}, fmt.Errorf("no secrets from the scheduler at %s for task %s: %w", ref.URL, taskID, err)
		}
		var lost errSecretsLost
		if errors.As(err, &lost) && onLost != nil && time.Since(lastPresented) > 20*time.Second {
			lastPresented = time.Now()
			if perr := onLost(ctx); perr != nil {
				log.Warn("the scheduler's secrets are lost and the copy on this volume could not be presented", zap.Error(perr))
			}
		}
		log.Warn("fetching the task's secrets from the scheduler failed; retrying", zap.String("scheduler", ref.URL),
			zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-ctx.Done():
			return taskspec.Secrets{}, fmt.Errorf("no secrets from the scheduler at %s for task %s: %w (last: %v)", ref.URL, taskID, ctx.Err(), last)
		case <-time.After(delay):
		}
		if delay *= 2; delay > 5*time.Second {
			delay = 5 * time.Second
		}
	}
}

func fetchOnce(ctx context.Context, client *http.Client, u, token string) (taskspec.Secrets, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return taskspec.Secrets{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return taskspec.Secrets{}, channelError(err, token)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return taskspec.Secrets{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == taskspec.SecretsLost {
			return taskspec.Secrets{}, errSecretsLost{resp.Status + ": " + e.Message}
		}
		return taskspec.Secrets{}, fmt.Errorf("%s: %s", resp.Status, e.Message)
	}
	var s taskspec.Secrets
	if err := json.Unmarshal(body, &s); err != nil {
		return taskspec.Secrets{}, errors.New("the scheduler's answer is not a secrets document")
	}
	return s, nil
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "<redacted>")
}

// channelClient is the HTTP client for the scheduler's executor channel
// at schedulerURL: over https it trusts caPEM only (the service's CA,
// from the task spec or the scheduler's MESSAGE; never the system's
// roots, never without verification); over plain http, which only a
// scheduler from before the TLS channel names, it has no TLS at all.
// Never through a proxy an agent's environment may carry (it would see
// the token).
func channelClient(schedulerURL, caPEM string) (*http.Client, error) {
	if err := taskspec.ValidChannel(schedulerURL, caPEM); err != nil {
		return nil, fmt.Errorf("the scheduler's executor channel: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("the scheduler's executor channel: the CA certificate is not a PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// channelError is the error of a request to the scheduler that got no
// answer, without the token: errUntrusted when the scheduler's
// certificate does not verify against the CA the executor was given.
func channelError(err error, token string) error {
	msg := redact(err.Error(), token)
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) {
		return errUntrusted{msg}
	}
	return errors.New(msg)
}

// errUntrusted: the scheduler's executor channel presented a certificate
// that does not verify against the CA from the task spec (or the
// scheduler's MESSAGE). Nothing is sent over such a connection and the
// fetch is not retried: the task fails and is relaunched with the
// scheduler's current CA.
type errUntrusted struct{ msg string }

func (e errUntrusted) Error() string {
	return "the scheduler's certificate does not verify against the CA this task was given; nothing was sent: " + e.msg
}

// errSecretsLost: the scheduler lost its secrets with its state and waits
// for a server's copy.
type errSecretsLost struct{ msg string }

func (e errSecretsLost) Error() string { return e.msg }
