package executor

import (
	"bytes"
	"context"
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

// tlsReloader is an agent that loads a new server certificate in place
// (*consulagent.Agent).
type tlsReloader interface {
	ReloadTLS(ctx context.Context, caPEM, certPEM, keyPEM string) (consulagent.TLSCertInfo, error)
}

// tlsRenewTimeout bounds one renewal: fetch, reload, report.
const tlsRenewTimeout = 2 * time.Minute

// renewTLS answers the scheduler's TLS renewal MESSAGE: in the
// background, it fetches a new certificate from the scheduler API named
// in the message (with the task's credential, as at launch), loads it
// into the running agent and reports the outcome there. One renewal at a
// time; a MESSAGE during one is dropped (the scheduler sends again if
// the certificate is still due).
func (r *taskRunner) renewTLS(schedulerURL string, client *http.Client) {
	if r.spec.Secrets == nil || !r.spec.TLS || r.spec.Role != taskspec.RoleServer {
		r.log.Warn("TLS renewal MESSAGE ignored: this task is not a server with TLS and a scheduler credential")
		return
	}
	if !r.renewing.CompareAndSwap(false, true) {
		r.log.Info("TLS renewal MESSAGE ignored: a renewal is under way")
		return
	}
	go func() {
		defer r.renewing.Store(false)
		ctx, cancel := context.WithTimeout(r.ctx, tlsRenewTimeout)
		defer cancel()
		ref := taskspec.SecretsRef{URL: schedulerURL, Token: r.spec.Secrets.Token}
		rep := r.reloadTLS(ctx, client, ref)
		if rep.Error != "" {
			r.log.Warn("TLS certificate renewal in place failed; the scheduler restarts the server instead", zap.String("why", rep.Error))
		}
		if err := reportTLSRenewal(ctx, client, ref, r.id.Value, rep); err != nil {
			r.log.Warn("TLS certificate renewal: the report did not reach the scheduler (it sends the request again while the certificate is due)",
				zap.String("scheduler", schedulerURL), zap.Error(err))
		}
	}()
}

// reloadTLS fetches the task's secrets (a server's carry a certificate
// issued at that moment) and loads the certificate into the agent.
func (r *taskRunner) reloadTLS(ctx context.Context, client *http.Client, ref taskspec.SecretsRef) taskspec.TLSRenewReport {
	r.joinMu.Lock()
	a := r.agent
	r.joinMu.Unlock()
	rl, ok := a.(tlsReloader)
	if a == nil || !ok {
		return taskspec.TLSRenewReport{Error: "the Consul agent is not running here yet"}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	sec, err := fetchSecrets(fctx, client, ref, r.id.Value, r.log, nil)
	cancel()
	if err != nil {
		return taskspec.TLSRenewReport{Error: err.Error()}
	}
	keepCopy(r.spec, r.env.Sandbox, sec, r.log)
	if sec.TLSCACert == "" || sec.TLSCert == "" || sec.TLSKey == "" {
		return taskspec.TLSRenewReport{Error: "the scheduler's answer has no server certificate"}
	}
	info, err := rl.ReloadTLS(ctx, sec.TLSCACert, sec.TLSCert, sec.TLSKey)
	if err != nil {
		return taskspec.TLSRenewReport{Serial: info.Serial, Error: err.Error()}
	}
	return taskspec.TLSRenewReport{Serial: info.Serial, NotAfter: info.NotAfter}
}

// reportTLSRenewal posts rep to the scheduler, a few times if it does not
// answer.
func reportTLSRenewal(ctx context.Context, client *http.Client, ref taskspec.SecretsRef, taskID string, rep taskspec.TLSRenewReport) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	u := strings.TrimRight(ref.URL, "/") + taskspec.TLSRenewPath + "?task_id=" + url.QueryEscape(taskID)
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		if last = postReport(ctx, client, u, ref.Token, body); last == nil {
			return nil
		}
		var untrusted errUntrusted
		if errors.As(last, &untrusted) {
			return last
		}
	}
	return last
}

func postReport(ctx context.Context, client *http.Client, u, token string, body []byte) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return channelError(err, token)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
