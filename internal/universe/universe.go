// Package universe builds dcos-consul's DC/OS Universe package from the
// source tree (config.json, universe/package.json, universe/resource.json,
// universe/marathon.json.mustache): the Marathon app as Cosmos renders it,
// and a local Universe repository (the index `dcos package repo add`
// reads, plus the binary and icons to host beside it).
//
// universe/resource.json names its files with the DC/OS SDK's build
// placeholders: {{artifact-dir}} for the URL of the folder the assets are
// hosted in, and {{sha256:<file>}} for a file's SHA-256. Resolve fills
// them in.
package universe

// Regenerate the top-level marathon.json (the template rendered with the
// defaults; TestMarathonJSONIsTheDefaultRender keeps them equal).
//go:generate go run ../../cmd/universe-repo -root ../.. -marathon ../../marathon.json

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
)

const (
	// DefaultBaseURL is the placeholder base URL of the hosted repository
	// (documented in docs/dcos-install.md); the top-level marathon.json
	// is rendered with it. Real installs pass their own (-base-url).
	DefaultBaseURL = "https://downloads.example.com/dcos-consul"

	// RepoMediaType is the Content-Type Cosmos requires of a v4 repository
	// index (it refuses application/json).
	RepoMediaType = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4"

	// RepoFile is the index's file name in a written repository.
	RepoFile = "repo.json"

	// ExecutorAsset is the file name of the linux x86-64 dcos-consul
	// binary (the scheduler and the executor) in the artifact folder: a
	// .tar.gz holding dcos-consul, which the Mesos fetcher extracts and
	// caches per agent (ExecutorArchive writes it).
	ExecutorAsset = "dcos-consul-linux-amd64.tar.gz"

	// CLIAssetPrefix starts the file names of the CLI plugin binaries
	// (cmd/dcos-consul-cli), dcos-consul-cli-<os>-<arch>[.exe]. They are
	// optional: one that is not given is not published and not listed.
	CLIAssetPrefix = "dcos-consul-cli-"

	placeholderArtifactDir = "{{artifact-dir}}"
)

// Source is the package as it is in the source tree.
type Source struct {
	Package  []byte // universe/package.json
	Config   []byte // config.json
	Resource []byte // universe/resource.json, with placeholders
	Template string // universe/marathon.json.mustache

	meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
}

// ReadSource reads the package files from the repository root.
func ReadSource(root string) (*Source, error) {
	return readSource(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(root, rel)) })
}

// ReadSourceFS reads the package files from fsys (dcosconsul.PackageFiles).
func ReadSourceFS(fsys fs.FS) (*Source, error) {
	return readSource(func(rel string) ([]byte, error) { return fs.ReadFile(fsys, rel) })
}

func readSource(readFile func(rel string) ([]byte, error)) (*Source, error) {
	read := func(rel string) ([]byte, error) {
		b, err := readFile(rel)
		if err != nil {
			return nil, fmt.Errorf("universe: %w", err)
		}
		return b, nil
	}
	s := &Source{}
	var err error
	if s.Package, err = read("universe/package.json"); err != nil {
		return nil, err
	}
	if s.Config, err = read("config.json"); err != nil {
		return nil, err
	}
	if s.Resource, err = read("universe/resource.json"); err != nil {
		return nil, err
	}
	tmpl, err := read("universe/marathon.json.mustache")
	if err != nil {
		return nil, err
	}
	s.Template = string(tmpl)
	if err := json.Unmarshal(s.Package, &s.meta); err != nil {
		return nil, fmt.Errorf("universe: universe/package.json: %w", err)
	}
	if s.meta.Name == "" || s.meta.Version == "" {
		return nil, errors.New("universe: universe/package.json has no name or version")
	}
	return s, nil
}

// Name is the package name.
func (s *Source) Name() string { return s.meta.Name }

// Version is the package version.
func (s *Source) Version() string { return s.meta.Version }

// ArtifactDir is the URL of the folder a version's assets are hosted in:
// <base URL>/<version>.
func (s *Source) ArtifactDir(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("universe: base URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	if strings.ContainsAny(baseURL, "\"\\{} \t\n") {
		return "", fmt.Errorf("universe: base URL %q contains characters a URL cannot", baseURL)
	}
	return strings.TrimRight(baseURL, "/") + "/" + s.Version(), nil
}

var shaPlaceholder = regexp.MustCompile(`^\{\{sha256:([^}]+)\}\}$`)

// Resolve fills in resource.json's placeholders: {{artifact-dir}} with
// artifactDir and {{sha256:<file>}} with hashes[<file>]. A CLI binary
// whose hash is not given is left out (it is not published); any other
// placeholder left is an error.
func (s *Source) Resolve(artifactDir string, hashes map[string]string) (map[string]any, error) {
	raw := bytes.ReplaceAll(s.Resource, []byte(placeholderArtifactDir), []byte(artifactDir))
	v, err := cosmos.DecodeJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("universe: universe/resource.json: %w", err)
	}
	res, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("universe: universe/resource.json is not an object")
	}
	// Optional assets (the CLI binaries) that are not published are not
	// listed either.
	if assets, ok := res["assets"].(map[string]any); ok {
		if uris, ok := assets["uris"].(map[string]any); ok {
			for k, v := range uris {
				u, _ := v.(string)
				f := u[strings.LastIndex(u, "/")+1:]
				if _, published := hashes[f]; strings.HasPrefix(f, CLIAssetPrefix) && !published {
					delete(uris, k)
				}
			}
		}
	}
	if cli, ok := res["cli"].(map[string]any); ok {
		bins, _ := cli["binaries"].(map[string]any)
		for osName, rawPlat := range bins {
			plat, _ := rawPlat.(map[string]any)
			for arch, rawInfo := range plat {
				info, _ := rawInfo.(map[string]any)
				hashesList, _ := info["contentHash"].([]any)
				keep := true
				for _, rh := range hashesList {
					h, _ := rh.(map[string]any)
					val, _ := h["value"].(string)
					m := shaPlaceholder.FindStringSubmatch(val)
					if m == nil {
						continue
					}
					if sum, ok := hashes[m[1]]; ok {
						h["value"] = sum
					} else {
						keep = false
					}
				}
				if !keep {
					delete(plat, arch)
				}
			}
			if len(plat) == 0 {
				delete(bins, osName)
			}
		}
		if len(bins) == 0 {
			delete(res, "cli")
		}
	}
	out, err := marshal(res)
	if err != nil {
		return nil, err
	}
	if i := bytes.Index(out, []byte("{{")); i >= 0 {
		end := i + 40
		if end > len(out) {
			end = len(out)
		}
		return nil, fmt.Errorf("universe: universe/resource.json: unresolved placeholder at %q", out[i:end])
	}
	return res, nil
}

// Cosmos is the package as Cosmos sees it, its assets hosted in
// artifactDir.
func (s *Source) Cosmos(artifactDir string) (*cosmos.Package, error) {
	res, err := s.Resolve(artifactDir, nil)
	if err != nil {
		return nil, err
	}
	resJSON, err := marshal(res)
	if err != nil {
		return nil, err
	}
	return cosmos.NewPackage(s.Config, resJSON, s.Template)
}

// RenderMarathon renders the Marathon app for options (nil: the defaults)
// with the assets hosted under baseURL, pretty-printed with the template's
// key order, as `dcos marathon app add` takes it.
func (s *Source) RenderMarathon(baseURL string, options map[string]any) ([]byte, error) {
	dir, err := s.ArtifactDir(baseURL)
	if err != nil {
		return nil, err
	}
	p, err := s.Cosmos(dir)
	if err != nil {
		return nil, err
	}
	out, err := p.Render(options)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// RepoIndex is the repository index document with this package as its
// only entry (Universe's gen_universe.py layout: package.json's fields,
// releaseVersion, config, resource and marathon.v2AppMustacheTemplate in
// base64), its assets in artifactDir with the given file hashes.
func (s *Source) RepoIndex(artifactDir string, releaseVersion int, hashes map[string]string) ([]byte, error) {
	entry := map[string]any{}
	pkg, err := cosmos.DecodeJSON(bytes.NewReader(s.Package))
	if err != nil {
		return nil, fmt.Errorf("universe: universe/package.json: %w", err)
	}
	for k, v := range pkg.(map[string]any) {
		entry[k] = v
	}
	cfg, err := cosmos.DecodeJSON(bytes.NewReader(s.Config))
	if err != nil {
		return nil, fmt.Errorf("universe: config.json: %w", err)
	}
	res, err := s.Resolve(artifactDir, hashes)
	if err != nil {
		return nil, err
	}
	entry["releaseVersion"] = releaseVersion
	entry["config"] = cfg
	entry["resource"] = res
	entry["marathon"] = map[string]any{
		"v2AppMustacheTemplate": base64.StdEncoding.EncodeToString([]byte(s.Template)),
	}
	out, err := marshal(map[string]any{"packages": []any{entry}})
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// AssetFiles are the file names resource.json refers to in the artifact
// folder, sorted.
func (s *Source) AssetFiles() []string {
	re := regexp.MustCompile(regexp.QuoteMeta(placeholderArtifactDir) + `/([^"]+)`)
	seen := map[string]bool{}
	for _, m := range re.FindAllSubmatch(s.Resource, -1) {
		seen[string(m[1])] = true
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// marshal is indented JSON without HTML escaping (Universe files must not
// contain \u escapes).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
