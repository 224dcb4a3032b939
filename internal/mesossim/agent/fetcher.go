package agent

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The Mesos fetcher, for the URI kinds dcos-consul needs: absolute paths,
// file:// and http(s)://. Each URI lands in the sandbox under output_file or
// its basename; `executable` sets 0755 (and is never extracted); `extract`
// (default true) unpacks .tar, .tar.gz, .tgz and .zip archives into the
// sandbox. `cache` keeps a copy in the agent's fetcher cache
// (<work>/fetch-cache/<agent>) and copies from there; a cached archive is
// extracted straight from the cache, as Mesos does. Local copies use
// io.Copy between files, which on Linux becomes copy_file_range.

var fetchClient = &http.Client{Timeout: 10 * time.Minute}

// fetchAll fetches every URI; log gets the fetcher's account, as the real
// fetcher writes to the sandbox's stderr.
func (a *Agent) fetchAll(uris []mesos.CommandInfo_URI, sandbox string, log io.Writer) error {
	for _, u := range uris {
		fmt.Fprintf(log, "Fetching URI '%s'\n", u.Value)
		if err := a.fetch(u, sandbox); err != nil {
			fmt.Fprintf(log, "Failed to fetch '%s': %v\n", u.Value, err)
			return err
		}
		fmt.Fprintf(log, "Fetched '%s'\n", u.Value)
	}
	return nil
}

func (a *Agent) fetch(u mesos.CommandInfo_URI, sandbox string) error {
	name := u.GetOutputFile()
	if name == "" {
		name = uriBasename(u.Value)
	}
	if name == "" || name == "." || name == "/" {
		return fmt.Errorf("cannot determine a file name for URI '%s'", u.Value)
	}
	dest := name
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(sandbox, name)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	executable := u.GetExecutable()
	extract := u.Extract == nil || *u.Extract
	archive := !executable && extract && isArchive(name)

	src := ""
	if u.GetCache() && a.cfg.WorkDir != "" {
		cached, err := a.cached(u.Value)
		if err != nil {
			return err
		}
		if archive {
			return extractArchive(cached, name, sandbox)
		}
		src = cached
	}
	if src == "" {
		if err := download(a.ctx, u.Value, dest); err != nil {
			return err
		}
	} else if err := copyFile(src, dest); err != nil {
		return err
	}
	if executable {
		if err := os.Chmod(dest, 0o755); err != nil {
			return err
		}
	}
	if archive {
		return extractArchive(dest, name, sandbox)
	}
	return nil
}

// cached returns the cache file for a URI, downloading it on a miss.
func (a *Agent) cached(uri string) (string, error) {
	a.fetchMu.Lock()
	defer a.fetchMu.Unlock()
	dir := filepath.Join(a.cfg.WorkDir, "fetch-cache", a.cfg.ID.Value)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(uri))
	p := filepath.Join(dir, hex.EncodeToString(sum[:16])+"-"+uriBasename(uri))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	tmp := p + ".part"
	if err := download(a.ctx, uri, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// download copies a URI's content to dest.
func download(ctx context.Context, uri, dest string) error {
	switch {
	case strings.HasPrefix(uri, "/"):
		return copyFile(uri, dest)
	case strings.HasPrefix(uri, "file://"):
		pu, err := url.Parse(uri)
		if err != nil {
			return fmt.Errorf("malformed URI '%s': %w", uri, err)
		}
		return copyFile(pu.Path, dest)
	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return err
		}
		resp, err := fetchClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d from '%s'", resp.StatusCode, uri)
		}
		// Downloaded beside dest, then copied in without forks (writeNoFork):
		// a download can be slow, and forks must not wait for it.
		part := dest + ".part"
		f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer os.Remove(part)
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return copyFile(part, dest)
	default:
		return fmt.Errorf("unsupported URI '%s' (file://, http://, https:// or an absolute path)", uri)
	}
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("'%s' is a directory", src)
	}
	return writeNoFork(dest, func(out *os.File) error {
		_, err := io.Copy(out, in)
		return err
	})
}

// writeNoFork writes dest with fill while no process of this one can be
// forked. The simulated agents share one process and launch executors
// concurrently: a process forked while dest was open for writing kept the
// descriptor until it exec'd, and an exec of dest meanwhile failed with
// ETXTBSY (sh: "Text file busy", exit 126; golang/go#22315). Forks take
// syscall.ForkLock for writing; holding it for reading keeps them out.
// The real fetcher is a process of its own and has no such window.
func writeNoFork(dest string, fill func(*os.File) error) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := fill(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func uriBasename(uri string) string {
	if pu, err := url.Parse(uri); err == nil && pu.Path != "" {
		return path.Base(pu.Path)
	}
	return path.Base(uri)
}

func isArchive(name string) bool {
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".zip"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func extractArchive(file, name, dir string) error {
	if strings.HasSuffix(name, ".zip") {
		return extractZip(file, dir)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".tgz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("extract '%s': %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract '%s': %w", name, err)
		}
		target, err := within(dir, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode)&0o7777|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(target, tr, os.FileMode(h.Mode)&0o7777); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}

func extractZip(file, dir string) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("extract '%s': %w", filepath.Base(file), err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		target, err := within(dir, zf.Name)
		if err != nil {
			return err
		}
		if zf.FileInfo().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		mode := zf.Mode().Perm() &^ 0o022 // unzip under the usual umask
		if mode == 0 {
			mode = 0o644
		}
		err = writeFile(target, rc, mode)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// within resolves an archive member inside dir, refusing paths that escape.
func within(dir, name string) (string, error) {
	target := filepath.Join(dir, name)
	if target != dir && !strings.HasPrefix(target, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("archive member '%s' escapes the sandbox", name)
	}
	return target, nil
}

func writeFile(target string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	// An archive member can be the executor: written without forks too.
	err := writeNoFork(target, func(f *os.File) error {
		_, err := io.Copy(f, r)
		return err
	})
	if err != nil {
		return err
	}
	return os.Chmod(target, mode)
}
