package operator

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/dcos-consul/dcos-consul/internal/devstate"
)

// Environment variables read to find the scheduler.
const (
	// EnvURL is the scheduler API's address, used as is (e.g. the one
	// `dcos-consul dev` prints). Also what `dcos config set consul.url`
	// hands the plugin.
	EnvURL = "DCOS_CONSUL_URL"
	// EnvServiceName is the default --name; `dcos config set
	// consul.service_name <name>` hands it to the plugin.
	EnvServiceName = "DCOS_CONSUL_SERVICE_NAME"
	// EnvTokenFile names a file holding the service's operator token
	// (`dcos-consul dev` writes one and prints its path): mutating
	// commands send it in the OperatorTokenHeader.
	EnvTokenFile = "DCOS_CONSUL_TOKEN_FILE"

	// What the DC/OS CLI passes to a plugin when a cluster is attached
	// (dcos-cli design/plugin.md, "Calling a plugin").
	EnvDCOSURL         = "DCOS_URL"
	EnvDCOSToken       = "DCOS_ACS_TOKEN"
	EnvDCOSTLSInsecure = "DCOS_TLS_INSECURE"
	EnvDCOSTLSCAPath   = "DCOS_TLS_CA_PATH"

	// The DC/OS CLI's own settings, for running outside the CLI.
	EnvDCOSDir       = "DCOS_DIR"        // default ~/.dcos
	EnvDCOSCluster   = "DCOS_CLUSTER"    // name or ID of the cluster to use
	EnvDCOSSSLVerify = "DCOS_SSL_VERIFY" // overrides core.ssl_verify
)

// DefaultServiceName is the package's default service name.
const DefaultServiceName = "consul"

// Location is where the scheduler API is and how to authenticate to it.
type Location struct {
	// BaseURL is the API root without a trailing slash: the routes
	// (/v1/plans, ...) are appended to it.
	BaseURL string
	// Token is the DC/OS ACS token, sent as "Authorization: token=<Token>".
	Token string
	// OperatorToken is the service's own operator token (EnvTokenFile),
	// sent in OperatorTokenHeader, which Admin Router passes through.
	OperatorToken string
	// Insecure skips TLS verification; CAPath is a CA bundle to verify
	// against instead of the system's.
	Insecure bool
	CAPath   string
	// Service is the service name (the Admin Router path after /service/);
	// empty when the URL was given directly.
	Service string
	// From says where the address came from, for error messages.
	From string
}

// LookupEnv looks up an environment variable (os.LookupEnv in production).
type LookupEnv func(string) (string, bool)

func (e LookupEnv) get(k string) string {
	v, _ := e(k)
	return strings.TrimSpace(v)
}

// ServiceName is the service name to use: the flag if given, else the
// plugin's config (DCOS_CONSUL_SERVICE_NAME), else "consul". Marathon folder
// names (/prod/consul) are accepted with or without the leading slash.
func ServiceName(flag string, env LookupEnv) string {
	name := strings.TrimSpace(flag)
	if name == "" {
		name = env.get(EnvServiceName)
	}
	name = strings.Trim(name, "/")
	if name == "" {
		name = DefaultServiceName
	}
	return name
}

// Locate finds the scheduler API, in this order:
//  1. urlFlag (--url), then DCOS_CONSUL_URL: the scheduler's own address;
//  2. DCOS_URL (+ DCOS_ACS_TOKEN, DCOS_TLS_*), as the DC/OS CLI passes them to
//     a plugin: <DCOS_URL>/service/<name>;
//  3. a running `dcos-consul dev` (its ~/.dcos-consul/dev.json);
//  4. the attached cluster of the DC/OS CLI's configuration
//     (<DCOS_DIR or ~/.dcos>/clusters/<id>/dcos.toml, core.dcos_url and
//     core.dcos_acs_token).
//
// name is the service name (see ServiceName).
func Locate(urlFlag, name string, env LookupEnv) (Location, error) {
	loc, err := locate(urlFlag, name, env)
	if err != nil {
		return loc, err
	}
	if f := env.get(EnvTokenFile); f != "" {
		tok, err := readTokenFile(f)
		if err != nil {
			return Location{}, fmt.Errorf("%s: %w", EnvTokenFile, err)
		}
		loc.OperatorToken = tok
	}
	return loc, nil
}

// readTokenFile reads an operator token file, refusing one that others
// than its owner may read (as ssh does with private keys). Errors never
// contain the token.
func readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s does not hold one token", path)
	}
	return tok, nil
}

func locate(urlFlag, name string, env LookupEnv) (Location, error) {
	for _, c := range []struct{ v, from string }{{urlFlag, "--url"}, {env.get(EnvURL), EnvURL}} {
		if c.v == "" {
			continue
		}
		u, err := parseBase(c.v)
		if err != nil {
			return Location{}, fmt.Errorf("%s: %w", c.from, err)
		}
		loc := Location{BaseURL: u, Token: env.get(EnvDCOSToken), From: c.from}
		loc.Insecure, loc.CAPath = env.get(EnvDCOSTLSInsecure) == "1", env.get(EnvDCOSTLSCAPath)
		return loc, nil
	}
	if v := env.get(EnvDCOSURL); v != "" {
		u, err := parseBase(v)
		if err != nil {
			return Location{}, fmt.Errorf("%s: %w", EnvDCOSURL, err)
		}
		return Location{
			BaseURL: u + "/service/" + name, Token: env.get(EnvDCOSToken), Service: name,
			Insecure: env.get(EnvDCOSTLSInsecure) == "1", CAPath: env.get(EnvDCOSTLSCAPath), From: EnvDCOSURL,
		}, nil
	}
	if loc, ok := devLocation(env); ok {
		return loc, nil
	}
	cfg, err := LoadDCOSConfig(env)
	if err != nil {
		return Location{}, err
	}
	if cfg.URL == "" {
		return Location{}, fmt.Errorf("the DC/OS CLI configuration %s has no core.dcos_url: run `dcos cluster setup <url>`, or pass --url", cfg.Path)
	}
	u, err := parseBase(cfg.URL)
	if err != nil {
		return Location{}, fmt.Errorf("core.dcos_url in %s: %w", cfg.Path, err)
	}
	loc := Location{BaseURL: u + "/service/" + name, Token: cfg.Token, Service: name, From: cfg.Path}
	// As the DC/OS CLI reads core.ssl_verify (pkg/config Cluster.TLS):
	// empty verifies, a boolean says whether to verify, anything else is
	// the path of a CA bundle.
	if v := strings.TrimSpace(cfg.SSLVerify); v != "" {
		if verify, err := strconv.ParseBool(v); err == nil {
			loc.Insecure = !verify
		} else {
			loc.CAPath = v
		}
	}
	return loc, nil
}

// ErrNoLocation: nothing says where the scheduler is.
var ErrNoLocation = errors.New("no scheduler address: pass --url (e.g. the address `dcos-consul dev` prints) or set " + EnvURL +
	", start `dcos-consul dev`, or run as `dcos consul ...` on a cluster set up with `dcos cluster setup <url>`")

// runningDev reads the state file a running `dcos-consul dev` writes at a
// well-known place, and its path; ok is false when none is running. Only
// an environment with HOME (or DCOS_CONSUL_DEV_FILE) is looked at.
func runningDev(env LookupEnv) (devstate.State, string, bool) {
	if env.get("HOME") == "" && env.get(devstate.EnvFile) == "" {
		return devstate.State{}, "", false
	}
	path, err := devstate.WellKnown(env)
	if err != nil {
		return devstate.State{}, "", false
	}
	st, err := devstate.Read(path)
	if err != nil {
		return devstate.State{}, "", false
	}
	return st, path, true
}

// DevCosmosURL is the Cosmos stand-in of a running `dcos-consul dev`, or
// "" when none runs.
func DevCosmosURL(env LookupEnv) string {
	st, _, _ := runningDev(env)
	return st.CosmosURL
}

// devLocation is the scheduler of a running `dcos-consul dev`; ok is false
// when none is running.
func devLocation(env LookupEnv) (Location, bool) {
	st, path, ok := runningDev(env)
	if !ok {
		return Location{}, false
	}
	u, err := parseBase(st.SchedulerURL)
	if err != nil {
		return Location{}, false
	}
	loc := Location{BaseURL: u, From: "the dev cluster of " + path}
	if st.TokenFile != "" {
		// dev's operator token file (0600, this user's): mutating
		// commands work with no export.
		if tok, err := readTokenFile(st.TokenFile); err == nil {
			loc.OperatorToken = tok
		}
	}
	return loc, true
}

func parseBase(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("bad URL %q: want http://host[:port] or https://host[:port]", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("bad URL %q: no query or fragment, please", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// DCOSConfig is what the operator commands read from the DC/OS CLI's
// configuration of the current cluster.
type DCOSConfig struct {
	Path      string
	URL       string // core.dcos_url
	Token     string // core.dcos_acs_token
	SSLVerify string // core.ssl_verify ("true", "false" or a CA bundle path), or DCOS_SSL_VERIFY
}

type dcosTOML struct {
	Core struct {
		URL       string `toml:"dcos_url"`
		Token     string `toml:"dcos_acs_token"`
		SSLVerify any    `toml:"ssl_verify"`
	} `toml:"core"`
	Cluster struct {
		Name string `toml:"name"`
	} `toml:"cluster"`
}

// LoadDCOSConfig reads the current cluster's dcos.toml the way the DC/OS
// CLI picks it (dcos-cli pkg/config Manager.Current): DCOS_CLUSTER names a
// cluster (by name or ID); otherwise the only configured cluster, or the one
// with an `attached` file. The directory is DCOS_DIR, default ~/.dcos.
func LoadDCOSConfig(env LookupEnv) (DCOSConfig, error) {
	dir := env.get(EnvDCOSDir)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return DCOSConfig{}, fmt.Errorf("%w (and no home directory for ~/.dcos: %v)", ErrNoLocation, err)
		}
		dir = filepath.Join(home, ".dcos")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "clusters"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return DCOSConfig{}, fmt.Errorf("reading the DC/OS CLI configuration: %w", err)
	}
	type found struct {
		id, path string
		cfg      dcosTOML
		attached bool
	}
	var all []found
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, "clusters", e.Name(), "dcos.toml")
		var c dcosTOML
		if _, err := toml.DecodeFile(p, &c); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return DCOSConfig{}, fmt.Errorf("reading the DC/OS CLI configuration %s: %w", p, err)
		}
		_, aerr := os.Stat(filepath.Join(dir, "clusters", e.Name(), "attached"))
		all = append(all, found{id: e.Name(), path: p, cfg: c, attached: aerr == nil})
	}
	var pick *found
	if want := env.get(EnvDCOSCluster); want != "" {
		var names []string
		for i := range all {
			names = append(names, all[i].cfg.Cluster.Name+" ("+all[i].id+")")
			if all[i].id == want || all[i].cfg.Cluster.Name == want {
				if pick != nil && pick.id != all[i].id {
					return DCOSConfig{}, fmt.Errorf("%s=%s matches more than one configured cluster", EnvDCOSCluster, want)
				}
				pick = &all[i]
			}
		}
		if pick == nil {
			return DCOSConfig{}, fmt.Errorf("%s=%s: no such cluster in %s (configured: %s)", EnvDCOSCluster, want, dir, strings.Join(names, ", "))
		}
	} else if len(all) == 1 {
		pick = &all[0]
	} else {
		for i := range all {
			if !all[i].attached {
				continue
			}
			if pick != nil {
				return DCOSConfig{}, fmt.Errorf("more than one DC/OS cluster is attached in %s: run `dcos cluster attach <name>`", dir)
			}
			pick = &all[i]
		}
		if pick == nil && len(all) > 1 {
			return DCOSConfig{}, fmt.Errorf("%d DC/OS clusters are configured in %s and none is attached: run `dcos cluster attach <name>`, or pass --url", len(all), dir)
		}
	}
	if pick == nil {
		return DCOSConfig{}, ErrNoLocation
	}
	out := DCOSConfig{Path: pick.path, URL: strings.TrimSpace(pick.cfg.Core.URL), Token: strings.TrimSpace(pick.cfg.Core.Token)}
	switch v := pick.cfg.Core.SSLVerify.(type) {
	case bool:
		out.SSLVerify = fmt.Sprint(v)
	case string:
		out.SSLVerify = v
	}
	if v, ok := env(EnvDCOSSSLVerify); ok {
		out.SSLVerify = v
	}
	return out, nil
}
