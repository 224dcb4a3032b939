// Command universe-repo builds dcos-consul's DC/OS package from the source
// tree.
//
// Write a local Universe repository (the index plus the binary and icons
// to host beside it), and optionally serve it:
//
//	go run ./cmd/universe-repo -out dist/universe -base-url http://10.0.0.5:8080 [-binary dcos-consul] [-cli-dir dist/cli] [-serve :8080]
//
// then on a machine with the DC/OS CLI:
//
//	dcos package repo add --index=0 dcos-consul http://10.0.0.5:8080/repo.json
//	dcos package install consul
//
// Render the Marathon app (the top-level marathon.json is this with the
// defaults and the placeholder base URL):
//
//	go run ./cmd/universe-repo -marathon marathon.json [-options my-options.json] [-base-url ...]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
	"github.com/dcos-consul/dcos-consul/internal/universe"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

type assetFlags map[string]string

func (a assetFlags) String() string { return fmt.Sprint(map[string]string(a)) }

func (a assetFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return errors.New("want name=path, e.g. dcos-consul-darwin=build/darwin/dcos-consul")
	}
	a[name] = path
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "universe-repo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("universe-repo", flag.ContinueOnError)
	root := fs.String("root", ".", "the dcos-consul source tree (config.json, universe/)")
	out := fs.String("out", "dist/universe", "folder to write the repository into")
	baseURL := fs.String("base-url", universe.DefaultBaseURL, "URL the -out folder will be served from")
	binary := fs.String("binary", "", "the linux x86-64 dcos-consul binary to publish (as "+universe.ExecutorAsset+"); empty: build ./cmd/dcos-consul stripped")
	cliDir := fs.String("cli-dir", "", "a folder of CLI plugin binaries ("+universe.CLIAssetPrefix+"<os>-<arch>[.exe], from make cli) to publish")
	release := fs.Int("release", 0, "the package's releaseVersion in the repository")
	marathon := fs.String("marathon", "", "only render the Marathon app into this file ('-' for stdout)")
	optionsFile := fs.String("options", "", "with -marathon: a JSON options file, as for dcos package install --options")
	serve := fs.String("serve", "", "after writing, serve the -out folder on this address (e.g. :8080)")
	assets := assetFlags{}
	fs.Var(assets, "asset", "name=path: publish another file named in universe/resource.json (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src, err := universe.ReadSource(*root)
	if err != nil {
		return err
	}

	if *marathon != "" {
		var opts map[string]any
		if *optionsFile != "" {
			f, err := os.Open(*optionsFile)
			if err != nil {
				return err
			}
			v, err := cosmos.DecodeJSON(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", *optionsFile, err)
			}
			var ok bool
			if opts, ok = v.(map[string]any); !ok {
				return fmt.Errorf("%s: the options must be a JSON object", *optionsFile)
			}
		}
		app, err := src.RenderMarathon(*baseURL, opts)
		if err != nil {
			return err
		}
		if err := checkWithScheduler(app); err != nil {
			return err
		}
		if *marathon == "-" {
			_, err = os.Stdout.Write(app)
			return err
		}
		return os.WriteFile(*marathon, app, 0o644)
	}

	tmp, err := os.MkdirTemp("", "universe-repo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *binary == "" {
		*binary = filepath.Join(tmp, "dcos-consul")
		fmt.Fprintf(os.Stderr, "building ./cmd/dcos-consul for linux/amd64 (stripped)\n")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", *binary, "./cmd/dcos-consul")
		cmd.Dir = *root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building dcos-consul: %w", err)
		}
	}
	archive := filepath.Join(tmp, universe.ExecutorAsset)
	if err := universe.ExecutorArchive(archive, *binary); err != nil {
		return err
	}
	assets[universe.ExecutorAsset] = archive
	if *cliDir != "" {
		entries, err := os.ReadDir(*cliDir)
		if err != nil {
			return fmt.Errorf("-cli-dir: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), universe.CLIAssetPrefix) && !e.IsDir() {
				assets[e.Name()] = filepath.Join(*cliDir, e.Name())
			}
		}
	}
	repoURL, err := universe.WriteRepo(*out, src, universe.RepoOptions{
		BaseURL: *baseURL, ReleaseVersion: *release, Assets: assets,
	})
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (package %s %s)\nserve %s at %s, then:\n  dcos package repo add --index=0 dcos-consul %s\n  dcos package install %s\n",
		filepath.Join(*out, universe.RepoFile), src.Name(), src.Version(), *out, *baseURL, repoURL, src.Name())
	if *serve == "" {
		return nil
	}
	fmt.Printf("serving %s on %s\n", *out, *serve)
	return http.ListenAndServe(*serve, universe.Handler(*out))
}

// checkWithScheduler runs the scheduler's configuration loader on the
// rendered app's env, so that options config.json cannot judge (two ports
// alike, a bad placement rule) are refused now rather than when the
// scheduler starts.
func checkWithScheduler(app []byte) error {
	var a struct {
		Env map[string]any `json:"env"`
	}
	if err := json.Unmarshal(app, &a); err != nil {
		return err
	}
	_, err := config.Load(func(k string) (string, bool) {
		if k == config.EnvAPIPort {
			return "8080", true // Marathon's, at run time
		}
		v, ok := a.Env[k].(string)
		return v, ok
	})
	if err != nil {
		return fmt.Errorf("the scheduler would refuse these options:\n%w", err)
	}
	return nil
}
