package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// The agent's /files endpoints, enough to read sandboxes the way operators
// and the DC/OS CLI do (04a-custom-executor.txt): browse lists a directory
// (following symlinks, so a volume shows as a directory), read returns
// {"data","offset"}, download the raw bytes. Only paths under the agent's
// slaves/ and volumes/ directories are served; others are 404 as unattached
// paths are in Mesos.

func (a *Agent) filesPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.URL.Query().Get("path")
	if p == "" {
		httpError(w, http.StatusBadRequest, "Expecting 'path=value' in query.\n")
		return "", false
	}
	clean := filepath.Clean(p)
	ok := false
	for _, root := range []string{a.slaveDir(), filepath.Join(a.cfg.WorkDir, "volumes")} {
		if clean == root || strings.HasPrefix(clean, root+string(filepath.Separator)) {
			ok = true
		}
	}
	if !ok {
		httpError(w, http.StatusNotFound, "")
		return "", false
	}
	return clean, true
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

type fileInfo struct {
	Gid   string  `json:"gid"`
	Mode  string  `json:"mode"`
	Mtime float64 `json:"mtime"`
	Nlink uint64  `json:"nlink"`
	Path  string  `json:"path"`
	Size  int64   `json:"size"`
	UID   string  `json:"uid"`
}

func describe(p string, fi os.FileInfo) fileInfo {
	out := fileInfo{Mode: fi.Mode().String(), Mtime: float64(fi.ModTime().Unix()), Path: p, Size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		out.Nlink = uint64(st.Nlink)
		out.UID = strconv.Itoa(int(st.Uid))
		out.Gid = strconv.Itoa(int(st.Gid))
		if u, err := user.LookupId(out.UID); err == nil {
			out.UID = u.Username
		}
		if g, err := user.LookupGroupId(out.Gid); err == nil {
			out.Gid = g.Name
		}
	}
	return out
}

func (a *Agent) serveBrowse(w http.ResponseWriter, r *http.Request) {
	p, ok := a.filesPath(w, r)
	if !ok {
		return
	}
	fi, err := os.Stat(p)
	if err != nil {
		httpError(w, http.StatusNotFound, "")
		return
	}
	if !fi.IsDir() {
		writeJSON(w, []fileInfo{describe(p, fi)})
		return
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	list := []fileInfo{}
	for _, ent := range ents {
		full := filepath.Join(p, ent.Name())
		fi, err := os.Stat(full) // follows links: a volume shows as its directory
		if err != nil {
			continue
		}
		list = append(list, describe(full, fi))
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	writeJSON(w, list)
}

func (a *Agent) serveRead(w http.ResponseWriter, r *http.Request) {
	p, ok := a.filesPath(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "Failed to parse offset: "+q.Get("offset")+".\n")
		return
	}
	length := int64(-1)
	if l := q.Get("length"); l != "" {
		if length, err = strconv.ParseInt(l, 10, 64); err != nil {
			httpError(w, http.StatusBadRequest, "Failed to parse length: "+l+".\n")
			return
		}
	}
	f, err := os.Open(p)
	if err != nil {
		httpError(w, http.StatusNotFound, "")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		httpError(w, http.StatusBadRequest, "Cannot read a directory.\n")
		return
	}
	size := fi.Size()
	if offset == -1 {
		writeJSON(w, map[string]interface{}{"data": "", "offset": size})
		return
	}
	if offset < 0 || offset > size {
		offset = size
	}
	const maxRead = 16 << 20
	if length < 0 || length > maxRead {
		length = maxRead
	}
	buf := make([]byte, length)
	n, err := f.ReadAt(buf, offset)
	if err != nil && err != io.EOF {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, map[string]interface{}{"data": string(buf[:n]), "offset": offset})
}

func (a *Agent) serveDownload(w http.ResponseWriter, r *http.Request) {
	p, ok := a.filesPath(w, r)
	if !ok {
		return
	}
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() {
		httpError(w, http.StatusNotFound, "")
		return
	}
	w.Header().Set("Content-Disposition", "attachment; filename="+filepath.Base(p))
	http.ServeFile(w, r, p)
}
