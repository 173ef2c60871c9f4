// mkimage writes a docker-archive (what `docker save` writes and `ctr image import` reads) of
// single-layer images, from a JSON spec: no registry, no daemon, no umoci or skopeo. Every tag
// shares the one layer and differs only in its config (a release is a tag change, as for a user).
// The archive is reproducible: fixed modes, owners and times.
//
//	mkimage -spec spec.json -out images.tar
//
// spec: {"files": [{"path": "app/bin/x", "src": "/abs/x", "mode": 493} | {"path": "app/bin/y", "link": "x"}
//
//	| {"path": "tmp", "dir": true, "mode": 1023} | {"path": "etc/passwd", "content": "…"}],
//	"config": {image config: User, Entrypoint, Env, …}, "images": [{"ref": "localhost/x:v1", "env": ["VERSION=v1"]}]}
//
// or, for a root filesystem assembled elsewhere (mmdebstrap's tar), "layer": "/abs/rootfs.tar"
// instead of "files": that tar becomes the layer as it is, streamed, never held in memory.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

type file struct {
	Path    string `json:"path"`
	Src     string `json:"src,omitempty"`
	Content string `json:"content,omitempty"`
	Link    string `json:"link,omitempty"`
	Dir     bool   `json:"dir,omitempty"`
	Mode    int64  `json:"mode,omitempty"`
}

type image struct {
	Ref string   `json:"ref"`
	Env []string `json:"env"`
}

type spec struct {
	Files  []file         `json:"files"`
	Layer  string         `json:"layer,omitempty"`
	Config map[string]any `json:"config"`
	Images []image        `json:"images"`
}

var epoch = time.Unix(0, 0).UTC()

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "mkimage: "+format+"\n", a...)
	os.Exit(1)
}

// layer: the root filesystem as an uncompressed tar, parents before children.
func layer(files []file) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]int64{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
		if f.Dir {
			dirs[f.Path] = f.Mode
		}
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	hdr := func(h *tar.Header) {
		h.ModTime, h.Uname, h.Gname, h.Format = epoch, "", "", tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			die("%v", err)
		}
	}
	for _, d := range names {
		hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirs[d]})
	}
	for _, f := range files {
		switch {
		case f.Dir:
		case f.Link != "":
			hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: f.Path, Linkname: f.Link, Mode: 0o777})
		default:
			data := []byte(f.Content)
			if f.Src != "" {
				var err error
				if data, err = os.ReadFile(f.Src); err != nil {
					die("%v", err)
				}
			}
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			hdr(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: mode, Size: int64(len(data))})
			if _, err := tw.Write(data); err != nil {
				die("%v", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		die("%v", err)
	}
	return buf.Bytes()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func main() {
	specPath := flag.String("spec", "", "JSON spec")
	out := flag.String("out", "", "docker-archive to write")
	flag.Parse()
	if *specPath == "" || *out == "" {
		die("usage: mkimage -spec spec.json -out images.tar")
	}
	raw, err := os.ReadFile(*specPath)
	if err != nil {
		die("%v", err)
	}
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		die("%s: %v", *specPath, err)
	}
	for _, f := range s.Files {
		if strings.HasPrefix(f.Path, "/") || f.Path == "" {
			die("file paths are relative to the root: %q", f.Path)
		}
	}
	// the layer: built from the files in memory, or an existing tar streamed from disk
	var layerSize int64
	var layerHex string
	var writeLayer func(io.Writer) error
	if s.Layer != "" {
		if len(s.Files) > 0 {
			die("a spec has either \"files\" or \"layer\", not both")
		}
		f, err := os.Open(s.Layer)
		if err != nil {
			die("%v", err)
		}
		h := sha256.New()
		if layerSize, err = io.Copy(h, f); err != nil {
			die("%s: %v", s.Layer, err)
		}
		f.Close()
		layerHex = hex.EncodeToString(h.Sum(nil))
		writeLayer = func(w io.Writer) error {
			f, err := os.Open(s.Layer)
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := io.Copy(w, f)
			if err == nil && n != layerSize {
				err = fmt.Errorf("%s changed while being written (%d bytes, expected %d)", s.Layer, n, layerSize)
			}
			return err
		}
	} else {
		lay := layer(s.Files)
		layerSize, layerHex = int64(len(lay)), digest(lay)
		writeLayer = func(w io.Writer) error { _, err := w.Write(lay); return err }
	}

	outFile, err := os.Create(*out + ".tmp")
	if err != nil {
		die("%v", err)
	}
	bw := bufio.NewWriterSize(outFile, 1<<20)
	tw := tar.NewWriter(bw)
	header := func(name string, size int64) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			die("%v", err)
		}
	}
	add := func(name string, data []byte) {
		header(name, int64(len(data)))
		if _, err := tw.Write(data); err != nil {
			die("%v", err)
		}
	}
	header(layerHex+"/layer.tar", layerSize)
	if err := writeLayer(tw); err != nil {
		die("%v", err)
	}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	written := map[string]bool{} // tags with the same config share its file
	for _, im := range s.Images {
		cfg := map[string]any{}
		for k, v := range s.Config {
			cfg[k] = v
		}
		env := []string{}
		if base, ok := s.Config["Env"].([]any); ok {
			for _, e := range base {
				env = append(env, e.(string))
			}
		}
		cfg["Env"] = append(env, im.Env...)
		c, _ := json.Marshal(map[string]any{
			"architecture": "amd64", "os": "linux", "created": epoch.Format(time.RFC3339),
			"config":  cfg,
			"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
			"history": []map[string]string{{"created": epoch.Format(time.RFC3339), "created_by": "scripts/node/mkimage"}},
		})
		cHex := digest(c)
		if !written[cHex] {
			add(cHex+".json", c)
			written[cHex] = true
		}
		manifest = append(manifest, entry{Config: cHex + ".json", RepoTags: []string{im.Ref}, Layers: []string{layerHex + "/layer.tar"}})
	}
	m, _ := json.Marshal(manifest)
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		die("%v", err)
	}
	if err := bw.Flush(); err != nil {
		die("%v", err)
	}
	if err := outFile.Close(); err != nil {
		die("%v", err)
	}
	if err := os.Rename(*out+".tmp", *out); err != nil {
		die("%v", err)
	}
}
