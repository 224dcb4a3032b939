package scheduler

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/credentials"
)

// authCredentials are what the scheduler authenticates with toward Mesos
// and ZooKeeper, read from their files once at start.
type authCredentials struct {
	// mesos is the Authorization header of every scheduler API call
	// ("Basic base64(principal:secret)"), or "".
	mesos string
	zk    *credentials.ZK
}

// readAuth reads the credential files the configuration names. A file
// that cannot be used is an error naming the variable and the file,
// except a DC/OS service account document given through the package's
// service_account_secret: its IAM login is not implemented, and the
// scheduler keeps going without framework authentication (as it always
// did; a master that requires it answers 401, shown in /v1/health).
func readAuth(cfg config.Config, log *zap.Logger) (authCredentials, error) {
	var a authCredentials
	if p := cfg.FrameworkSecretPath(); p != "" {
		secret, err := credentials.ReadSecret(p)
		switch {
		case errors.Is(err, credentials.ErrServiceAccountLogin) && cfg.FrameworkSecretFile == "":
			log.Warn("framework authentication: not used", zap.String("principal", cfg.Principal), zap.Error(err))
		case err != nil:
			return a, fmt.Errorf("config: the framework secret (%s): %w", secretVar(cfg), err)
		default:
			a.mesos = basicAuth(cfg.Principal, secret)
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

func basicAuth(principal, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(principal+":"+secret))
}

// authFailure explains a SUBSCRIBE the master refused for authentication
// (401), or returns "" for any other error. sent: the scheduler sent
// credentials.
func authFailure(err error, principal string, sent bool) string {
	var apiErr *apierrors.Error
	if !errors.As(err, &apiErr) || !apierrors.CodeNotAuthenticated.Matches(apiErr) {
		return ""
	}
	if !sent {
		return fmt.Sprintf("the Mesos master requires framework authentication (401) and no secret is configured for principal %q: "+
			"set service.service_account_secret (DC/OS) or %s (plain Mesos); subscribing again with backoff", principal, config.EnvFrameworkSecretFile)
	}
	return fmt.Sprintf("the Mesos master refused the credentials of principal %q (401): the secret does not match the master's "+
		"credentials for it (or the principal is unknown there); subscribing again with backoff", principal)
}
