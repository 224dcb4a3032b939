package universe

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
)

func fakeBinary(t *testing.T) (string, []byte) {
	t.Helper()
	data := []byte("#!/bin/sh\necho not really dcos-consul\n")
	p := filepath.Join(t.TempDir(), "dcos-consul")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// TestWriteRepo writes a repository, checks the index against the v4
// repository schema and the files beside it, and renders the app from the
// index entry the way Cosmos would after `dcos package repo add`.
func TestWriteRepo(t *testing.T) {
	s := source(t)
	bin, data := fakeBinary(t)
	dir := t.TempDir()
	archive := filepath.Join(t.TempDir(), ExecutorAsset)
	if err := ExecutorArchive(archive, bin); err != nil {
		t.Fatal(err)
	}
	repoURL, err := WriteRepo(dir, s, RepoOptions{BaseURL: testBaseURL + "/", ReleaseVersion: 3,
		Assets: map[string]string{ExecutorAsset: archive, "dcos-consul-cli-linux-amd64": bin}})
	if err != nil {
		t.Fatal(err)
	}
	if repoURL != testBaseURL+"/repo.json" {
		t.Errorf("repo URL %s", repoURL)
	}
	index, err := os.ReadFile(filepath.Join(dir, RepoFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(SchemaRepoV4, index); err != nil {
		t.Fatalf("repo.json does not match %s: %v", SchemaRepoV4, err)
	}
	if bytes.Contains(index, []byte(`\u`)) {
		t.Error(`repo.json contains \u escapes`)
	}
	var repo struct {
		Packages []map[string]json.RawMessage `json:"packages"`
	}
	if err := json.Unmarshal(index, &repo); err != nil || len(repo.Packages) != 1 {
		t.Fatalf("packages: %v %d", err, len(repo.Packages))
	}
	entry := repo.Packages[0]
	var name, version string
	var release int
	json.Unmarshal(entry["name"], &name)
	json.Unmarshal(entry["version"], &version)
	json.Unmarshal(entry["releaseVersion"], &release)
	if name != "consul" || version != s.Version() || release != 3 {
		t.Errorf("entry %s %s release %d", name, version, release)
	}
	var marathon struct {
		Template string `json:"v2AppMustacheTemplate"`
	}
	json.Unmarshal(entry["marathon"], &marathon)
	tmpl, err := base64.StdEncoding.DecodeString(marathon.Template)
	if err != nil || string(tmpl) != s.Template {
		t.Fatalf("marathon.v2AppMustacheTemplate does not decode to the template: %v", err)
	}
	if !reflect.DeepEqual(decode(t, entry["config"]), decode(t, s.Config)) {
		t.Error("the entry's config differs from config.json")
	}

	// The assets: the binary with its hash, and PNG icons of the right size.
	sum := sha256.Sum256(data)
	res := decode(t, entry["resource"]).(map[string]any)
	cli := res["cli"].(map[string]any)["binaries"].(map[string]any)["linux"].(map[string]any)["x86-64"].(map[string]any)
	if got := cli["contentHash"].([]any)[0].(map[string]any)["value"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("CLI hash %v, want the binary's %x", got, sum)
	}
	artifactDir := testBaseURL + "/" + s.Version()
	if cli["url"] != artifactDir+"/dcos-consul-cli-linux-amd64" {
		t.Errorf("CLI url %v", cli["url"])
	}
	// The executor archive holds the binary as dcos-consul, executable.
	f, err := os.Open(filepath.Join(dir, s.Version(), ExecutorAsset))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != "dcos-consul" || h.Mode&0o111 == 0 {
		t.Fatalf("archive entry %+v %v", h, err)
	}
	if published, err := io.ReadAll(tr); err != nil || !bytes.Equal(published, data) {
		t.Fatalf("archived binary: %v", err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("more than one file in the archive: %v", err)
	}
	images := res["images"].(map[string]any)
	for key, size := range map[string]int{"icon-small": 48, "icon-medium": 128, "icon-large": 256} {
		url := images[key].(string)
		if !strings.HasPrefix(url, artifactDir+"/") {
			t.Errorf("%s at %s", key, url)
			continue
		}
		f, err := os.Open(filepath.Join(dir, s.Version(), strings.TrimPrefix(url, artifactDir+"/")))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Errorf("%s is %v, want %dx%d", key, b, size, size)
		}
	}

	// Cosmos renders from the index what RenderMarathon renders.
	resJSON, _ := json.Marshal(res)
	p, err := cosmos.NewPackage(entry["config"], resJSON, string(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.RenderMarathon(testBaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var gotIndented bytes.Buffer
	json.Indent(&gotIndented, got, "", "  ")
	gotIndented.WriteByte('\n')
	if !bytes.Equal(gotIndented.Bytes(), want) {
		t.Errorf("app rendered from the index differs:\n%s\nwant\n%s", gotIndented.Bytes(), want)
	}
	if !strings.Contains(string(want), artifactDir+"/"+ExecutorAsset) {
		t.Error("the app does not fetch the published archive")
	}

	// Served with the media type Cosmos requires.
	srv := httptest.NewServer(Handler(dir))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/repo.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != RepoMediaType || !bytes.Equal(body, index) {
		t.Errorf("GET /repo.json: %s, %d bytes", ct, len(body))
	}
	resp, err = http.Get(srv.URL + "/" + s.Version() + "/dcos-consul-cli-linux-amd64")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, data) {
		t.Error("GET the binary: wrong content")
	}
}

func TestWriteRepoRefusesMissingOrUnknownAssets(t *testing.T) {
	s := source(t)
	bin, _ := fakeBinary(t)
	if _, err := WriteRepo(t.TempDir(), s, RepoOptions{BaseURL: testBaseURL}); err == nil || !strings.Contains(err.Error(), ExecutorAsset) {
		t.Errorf("no executor archive: %v", err)
	}
	_, err := WriteRepo(t.TempDir(), s, RepoOptions{BaseURL: testBaseURL, Assets: map[string]string{ExecutorAsset: bin, "extra": bin}})
	if err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("unknown asset: %v", err)
	}
	if _, err := WriteRepo(t.TempDir(), s, RepoOptions{BaseURL: "downloads", Assets: map[string]string{ExecutorAsset: bin}}); err == nil {
		t.Error("a base URL without scheme was accepted")
	}
}

// TestRepoIndexSchemaCatchesMistakes: the v4 schema check can fail.
func TestRepoIndexSchemaCatchesMistakes(t *testing.T) {
	s := source(t)
	index, err := s.RepoIndex(testBaseURL+"/x", 0, map[string]string{ExecutorAsset: "00", "dcos-consul-cli-linux-amd64": "00"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(SchemaRepoV4, index); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`"releaseVersion": 0`, `"packagingVersion": "4.0"`} {
		broken := bytes.Replace(index, []byte(bad), []byte(strings.Replace(bad, `0`, `-1`, 1)), 1)
		if bytes.Equal(broken, index) {
			t.Fatalf("%s not found in the index", bad)
		}
		if Validate(SchemaRepoV4, broken) == nil {
			t.Errorf("the v4 schema accepted %s changed", bad)
		}
	}
}
