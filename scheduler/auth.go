package scheduler

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/credentials"
	"github.com/dcos-consul/dcos-consul/scheduler/dcoslogin"
)

// mesosAuth gives the Authorization header of every call to the master.
type mesosAuth interface {
	Header(ctx context.Context) (string, error)
	// Refused: the master answered 401 (a cached token is dropped).
	Refused()
}

// basicAuth is HTTP Basic with the principal's secret.
type basicAuth string

func (b basicAuth) Header(context.Context) (string, error) { return string(b), nil }
func (basicAuth) Refused()                                 {}

// dcosCABundle is where DC/OS keeps its cluster CA on every node; the
// login to IAM trusts it besides the system's roots.
const dcosCABundle = "/run/dcos/pki/CA/ca-bundle.crt"

// authCredentials are what the scheduler authenticates with toward Mesos
// and ZooKeeper, read from their files once at start.
type authCredentials struct {
	mesos mesosAuth // nil: no framework authentication
	zk    *credentials.ZK
}

// readAuth reads the credential files the configuration names. A file
// that cannot be used is an error naming the variable and the file. A
// plain secret is sent as HTTP Basic; a DC/OS service account document
// logs in to DC/OS IAM and sends its token.
func readAuth(cfg config.Config, log *zap.Logger) (authCredentials, error) {
	var a authCredentials
	if p := cfg.FrameworkSecretPath(); p != "" {
		secret, err := credentials.ReadSecret(p)
		switch {
		case errors.Is(err, credentials.ErrServiceAccountLogin):
			b, err := credentials.ReadServiceAccount(p)
			if err != nil {
				return a, fmt.Errorf("config: the framework secret (%s): %w", secretVar(cfg), err)
			}
			acct, err := dcoslogin.Parse(b)
			if err != nil {
				return a, fmt.Errorf("config: the framework secret (%s): %w", secretVar(cfg), err)
			}
			if acct.UID != cfg.Principal {
				log.Warn("the service account's uid is not the framework principal: DC/OS's master refuses a framework whose principal is not the authenticated one",
					zap.String("uid", acct.UID), zap.String("principal", cfg.Principal))
			}
			a.mesos = dcoslogin.New(acct, dcosCABundle)
			log.Info("framework authentication: DC/OS service account login, its token on every call to the master",
				zap.String("uid", acct.UID), zap.String("login_endpoint", acct.LoginEndpoint), zap.String("secret_file", p))
		case err != nil:
			return a, fmt.Errorf("config: the framework secret (%s): %w", secretVar(cfg), err)
		default:
			a.mesos = basicAuthOf(cfg.Principal, secret)
			log.Info("framework authentication: HTTP Basic with the principal's secret on every call to the master",
				zap.String("principal", cfg.Principal), zap.String("secret_file", p))
		}
	}
	if p := cfg.ZKCredentialsFile; p != "" {
		z, err := credentials.ReadZK(p)
		if err != nil {
			return a, fmt.Errorf("config: %s: %w", config.EnvZKCredentialsFile, err)
		}
		a.zk = &z
	}
	return a, nil
}

func secretVar(cfg config.Config) string {
	if cfg.FrameworkSecretFile != "" {
		return config.EnvFrameworkSecretFile
	}
	return config.EnvServiceAccountCredential + " (option service.service_account_secret)"
}

func basicAuthOf(principal, secret string) basicAuth {
	return basicAuth("Basic " + base64.StdEncoding.EncodeToString([]byte(principal+":"+secret)))
}

// authFailure explains a SUBSCRIBE the master refused for authentication
// (401) or that could not be sent for a failed DC/OS login, or returns ""
// for any other error. sent: the scheduler sent credentials.
func authFailure(err error, principal string, sent bool) string {
	var loginErr *dcoslogin.Error
	if errors.As(err, &loginErr) {
		return loginErr.Error() + "; the master is not called without the token; trying again with backoff"
	}
	var apiErr *apierrors.Error
	if !errors.As(err, &apiErr) || !apierrors.CodeNotAuthenticated.Matches(apiErr) {
		return ""
	}
	if !sent {
		return fmt.Sprintf("the Mesos master requires framework authentication (401) and no secret is configured for principal %q: "+
			"set service.service_account_secret (DC/OS) or %s (plain Mesos); subscribing again with backoff", principal, config.EnvFrameworkSecretFile)
	}
	return fmt.Sprintf("the Mesos master refused the credentials of principal %q (401): the master does not accept the secret "+
		"(or the DC/OS token) for it, or does not know the principal; subscribing again with backoff", principal)
}
