package universe

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// RepoOptions say where a repository will be hosted and what goes in it.
type RepoOptions struct {
	// BaseURL is where the written folder will be served from; the index
	// is at <BaseURL>/repo.json and the assets at <BaseURL>/<version>/.
	BaseURL string
	// ReleaseVersion is the package's revision index in the repository.
	ReleaseVersion int
	// Assets maps artifact file names (as resource.json names them, e.g.
	// "dcos-consul") to local files to publish. Icons missing from it are
	// drawn (Icons).
	Assets map[string]string
}

// WriteRepo writes a local Universe repository into dir: the index
// (repo.json, checked against the v4 repository schema) and the assets
// beside it under <version>/, with their SHA-256 in the index. It returns
// the URL to give `dcos package repo add`.
func WriteRepo(dir string, s *Source, o RepoOptions) (string, error) {
	artifactDir, err := s.ArtifactDir(o.BaseURL)
	if err != nil {
		return "", err
	}
	icons, err := Icons()
	if err != nil {
		return "", err
	}
	assetDir := filepath.Join(dir, s.Version())
	if err := os.MkdirAll(assetDir, 0o755); err != nil {
		return "", err
	}
	hashes := map[string]string{}
	for _, name := range s.AssetFiles() {
		if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
			return "", fmt.Errorf("universe: asset name %q must be a plain file name", name)
		}
		dst := filepath.Join(assetDir, name)
		var sum string
		switch src, ok := o.Assets[name]; {
		case ok:
			sum, err = copyFile(dst, src)
		case icons[name] != nil:
			sum, err = writeFile(dst, icons[name])
		case strings.HasPrefix(name, CLIAssetPrefix):
			continue // an optional CLI binary not built: not published
		default:
			return "", fmt.Errorf("universe: resource.json names %s but no file was given for it", name)
		}
		if err != nil {
			return "", fmt.Errorf("universe: asset %s: %w", name, err)
		}
		hashes[name] = sum
	}
	for name := range o.Assets {
		if _, ok := hashes[name]; !ok {
			return "", fmt.Errorf("universe: asset %s is not named in universe/resource.json", name)
		}
	}
	index, err := s.RepoIndex(artifactDir, o.ReleaseVersion, hashes)
	if err != nil {
		return "", err
	}
	if err := Validate(SchemaRepoV4, index); err != nil {
		return "", fmt.Errorf("universe: the repository index does not match %s: %w", SchemaRepoV4, err)
	}
	if _, err := writeFile(filepath.Join(dir, RepoFile), index); err != nil {
		return "", err
	}
	return strings.TrimRight(o.BaseURL, "/") + "/" + RepoFile, nil
}

func writeFile(dst string, data []byte) (string, error) {
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func copyFile(dst, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Handler serves a written repository folder: files as they are, and the
// index with the Content-Type Cosmos requires.
func Handler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Clean(r.URL.Path) == "/"+RepoFile {
			w.Header().Set("Content-Type", RepoMediaType)
		}
		files.ServeHTTP(w, r)
	})
}

// ExecutorArchive writes the .tar.gz of the dcos-consul binary that the
// package publishes (ExecutorAsset): one file, dcos-consul, mode 0755,
// gzip at its default level (-9 takes minutes on a 176 MB binary for a percent less).
func ExecutorArchive(dst, binary string) error {
	in, err := os.Open(binary)
	if err != nil {
		return fmt.Errorf("universe: executor archive: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("universe: executor archive: %w", err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("universe: executor archive: %w", err)
	}
	gz, _ := gzip.NewWriterLevel(out, gzip.DefaultCompression)
	tw := tar.NewWriter(gz)
	hdr := &tar.Header{Name: "dcos-consul", Mode: 0o755, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	err = tw.WriteHeader(hdr)
	if err == nil {
		_, err = io.Copy(tw, in)
	}
	for _, c := range []io.Closer{tw, gz, out} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("universe: executor archive %s: %w", dst, err)
	}
	return nil
}
