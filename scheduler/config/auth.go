package config

import (
	"errors"
	"net/url"
)

// Authentication toward Mesos, ZooKeeper and DC/OS. Every secret comes
// from a file whose path is in the environment, never the secret itself:
// the environment shows in Marathon's app and in /master/state.
const (
	// EnvFrameworkSecretFile names a file holding the framework
	// principal's secret, sent as HTTP Basic (principal:secret) on every
	// scheduler API call, as a master started with
	// --authenticate_http_frameworks --http_framework_authenticators=basic
	// expects. On DC/OS the package passes the secret of
	// service.service_account_secret as DCOS_SERVICE_ACCOUNT_CREDENTIAL.
	EnvFrameworkSecretFile = "FRAMEWORK_SECRET_FILE"
	// EnvZKCredentialsFile names a file holding "user:password": the
	// ZooKeeper store then authenticates with that digest identity and
	// creates every node with a digest ACL for it alone.
	EnvZKCredentialsFile = "STATE_ZK_CREDENTIALS_FILE"
	// EnvZKCredentialsSecret is the name of the DC/OS secret (never its
	// value) the package mounts into the scheduler's sandbox and names in
	// EnvZKCredentialsFile (option service.zookeeper_credentials_secret).
	EnvZKCredentialsSecret = "STATE_ZK_CREDENTIALS_SECRET"
	// EnvDCOSJWKSURL is DC/OS IAM's JWKS (Admin Router serves it at
	// /acs/api/v1/auth/jwks); set, a valid DC/OS authentication token
	// (RS256, not expired) is accepted on the mutating API routes.
	EnvDCOSJWKSURL = "DCOS_JWKS_URL"
)

// FrameworkSecretPath is the file the framework secret is read from:
// FRAMEWORK_SECRET_FILE, else the DC/OS service account secret's file,
// else "" (no framework authentication).
func (c Config) FrameworkSecretPath() string {
	if c.FrameworkSecretFile != "" {
		return c.FrameworkSecretFile
	}
	return c.ServiceAccountCredential
}

func (c Config) validateAuth() error {
	var errs []error
	if c.FrameworkSecretFile != "" && c.ServiceAccountCredential != "" {
		errs = append(errs, bad(EnvFrameworkSecretFile, c.FrameworkSecretFile,
			"empty while "+EnvServiceAccountCredential+" is set: the framework secret comes from one file"))
	}
	if c.ZKCredentialsSecret != "" && c.ZKCredentialsFile == "" {
		errs = append(errs, bad(EnvZKCredentialsFile, "", "set together with "+EnvZKCredentialsSecret+" (the package sets both when the secret is given)"))
	}
	if c.ZKCredentialsFile != "" && c.ZK == "" {
		errs = append(errs, bad(EnvZKCredentialsFile, c.ZKCredentialsFile,
			"empty with the file store (it applies to the ZooKeeper store, "+EnvZK+")"))
	}
	if c.DCOSJWKSURL != "" {
		u, err := url.Parse(c.DCOSJWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, bad(EnvDCOSJWKSURL, c.DCOSJWKSURL,
				"an http(s) URL of DC/OS IAM's keys, such as http://master.mesos/acs/api/v1/auth/jwks, or empty to accept only the operator token"))
		}
	}
	return errors.Join(errs...)
}
