// Command tlogcheck verifies an archiver transparency log with Go's own transparency-log code
// (golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, the checksum database's), not ours:
//
//	tlogcheck -dir LOGDIR -vkey VKEY [-old OLD_CHECKPOINT] [-proof FILE]... [-entries]
//
// It opens LOGDIR/checkpoint with note.Open and the vkey (note.NewVerifier), computes the tree hash
// through tlog.TileHashReader over our tiles (Go names a tile tile/H/L/NNN; c2sp.org/tlog-tiles drops
// the height: tile/L/NNN), checks every entry of the entry bundles with ProveRecord/CheckRecord
// (-entries), each tlog-proof file with CheckRecord, and an older checkpoint with ProveTree/CheckTree.
// Every line it prints starts with OK or FAIL; it exits 1 when any check failed.
package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type proofs []string

func (p *proofs) String() string     { return strings.Join(*p, ",") }
func (p *proofs) Set(s string) error { *p = append(*p, s); return nil }

var failed bool

func fail(format string, args ...interface{}) {
	failed = true
	fmt.Printf("FAIL "+format+"\n", args...)
}

// tileReader reads c2sp.org/tlog-tiles files from a directory for Go's tlog package.
type tileReader struct{ dir string }

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		// Go: tile/8/L/NNN[.p/W]; C2SP: tile/L/NNN[.p/W]
		path := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
		data, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(path)))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies a signed note with the log's key and parses its tlog-checkpoint body.
func openCheckpoint(msg []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return checkpoint{}, errors.New("not a checkpoint")
	}
	if lines[0] != v.Name() {
		return checkpoint{}, fmt.Errorf("origin %q is not the key's name %q", lines[0], v.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return checkpoint{}, errors.New("bad root hash")
	}
	var root tlog.Hash
	copy(root[:], raw)
	return checkpoint{lines[0], size, root}, nil
}

// entries reads the entry bundles of a tree of size n (full bundles, then the partial one).
func entries(dir string, n int64) ([][]byte, error) {
	var out [][]byte
	for start := int64(0); start < n; start += 256 {
		t := tlog.Tile{H: 8, L: 0, N: start / 256, W: 256}
		if n-start < 256 {
			t.W = int(n - start)
		}
		path := strings.Replace(t.Path(), "tile/8/0/", "tile/entries/", 1)
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil {
			return nil, err
		}
		for len(data) > 0 {
			if len(data) < 2 {
				return nil, errors.New("truncated entry bundle " + path)
			}
			l := int(data[0])<<8 | int(data[1])
			if len(data) < 2+l {
				return nil, errors.New("truncated entry bundle " + path)
			}
			out = append(out, data[2:2+l])
			data = data[2+l:]
		}
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("the entry bundles hold %d entries, the checkpoint %d", len(out), n)
	}
	return out, nil
}

func checkProof(path string, v note.Verifier) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("proof %s: %v", path, err)
		return
	}
	i := bytes.Index(data, []byte("\n\n"))
	if i < 0 {
		fail("proof %s: no checkpoint", path)
		return
	}
	lines := strings.Split(string(data[:i]), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		fail("proof %s: not a c2sp.org/tlog-proof@v1", path)
		return
	}
	lines = lines[1:]
	var entry []byte
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		entry, _ = base64.StdEncoding.DecodeString(lines[0][6:])
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		fail("proof %s: no index line", path)
		return
	}
	index, _ := strconv.ParseInt(lines[0][6:], 10, 64)
	var p tlog.RecordProof
	for _, l := range lines[1:] {
		raw, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(raw) != tlog.HashSize {
			fail("proof %s: bad hash line", path)
			return
		}
		var h tlog.Hash
		copy(h[:], raw)
		p = append(p, h)
	}
	cp, err := openCheckpoint(data[i+2:], v)
	if err != nil {
		fail("proof %s: checkpoint: %v", path, err)
		return
	}
	if err := tlog.CheckRecord(p, cp.size, cp.root, index, tlog.RecordHash(entry)); err != nil {
		fail("proof %s: CheckRecord: %v", path, err)
		return
	}
	fmt.Printf("OK proof %s: entry %d is in the tree of %d\n", filepath.Base(path), index, cp.size)
}

func main() {
	dir := flag.String("dir", "", "the log directory (holding checkpoint and tile/)")
	vkey := flag.String("vkey", "", "the log's verifier key")
	old := flag.String("old", "", "an older checkpoint of the log: check consistency from it")
	all := flag.Bool("entries", false, "check every entry's inclusion with ProveRecord/CheckRecord")
	var files proofs
	flag.Var(&files, "proof", "a tlog-proof file to check (repeatable)")
	flag.Parse()

	v, err := note.NewVerifier(*vkey)
	if err != nil {
		fmt.Printf("FAIL vkey: %v\n", err)
		os.Exit(2)
	}
	for _, f := range files {
		checkProof(f, v)
	}
	if *dir == "" {
		if failed {
			os.Exit(1)
		}
		return
	}
	msg, err := os.ReadFile(filepath.Join(*dir, "checkpoint"))
	if err != nil {
		fail("checkpoint: %v", err)
		os.Exit(1)
	}
	cp, err := openCheckpoint(msg, v)
	if err != nil {
		fail("checkpoint: note.Open: %v", err)
		os.Exit(1)
	}
	fmt.Printf("OK checkpoint %s size %d signed by %s\n", cp.origin, cp.size, v.Name())
	hr := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, tileReader{*dir})
	th, err := tlog.TreeHash(cp.size, hr)
	if err != nil {
		fail("TreeHash over the tiles: %v", err)
	} else if th != cp.root {
		fail("TreeHash over the tiles is %v, the checkpoint says %v", th, cp.root)
	} else {
		fmt.Printf("OK tiles: the tree hash of %d entries is the checkpoint's root\n", cp.size)
	}
	if *all {
		es, err := entries(*dir, cp.size)
		if err != nil {
			fail("entries: %v", err)
		} else {
			bad := 0
			for i, e := range es {
				p, err := tlog.ProveRecord(cp.size, int64(i), hr)
				if err == nil {
					err = tlog.CheckRecord(p, cp.size, cp.root, int64(i), tlog.RecordHash(e))
				}
				if err != nil {
					bad++
					if bad <= 5 {
						fail("entry %d: %v", i, err)
					}
				}
			}
			if bad == 0 {
				fmt.Printf("OK entries: all %d entries are included (ProveRecord/CheckRecord)\n", len(es))
			}
		}
	}
	if *old != "" {
		data, err := os.ReadFile(*old)
		if err != nil {
			fail("old checkpoint: %v", err)
		} else if oc, err := openCheckpoint(data, v); err != nil {
			fail("old checkpoint: note.Open: %v", err)
		} else if oc.size > cp.size {
			fail("consistency: the old checkpoint (%d) is larger than the current one (%d)", oc.size, cp.size)
		} else if oc.size == 0 {
			// the empty tree is consistent with every tree (RFC 6962 2.1.2); ProveTree has no proof for it
			fmt.Printf("OK consistency: the tree of %d extends the empty tree\n", cp.size)
		} else if p, err := tlog.ProveTree(cp.size, oc.size, hr); err != nil {
			fail("consistency: ProveTree: %v", err)
		} else if err := tlog.CheckTree(p, cp.size, cp.root, oc.size, oc.root); err != nil {
			fail("consistency: CheckTree from %d to %d: %v", oc.size, cp.size, err)
		} else {
			fmt.Printf("OK consistency: the tree of %d extends the tree of %d (CheckTree)\n", cp.size, oc.size)
		}
	}
	if failed {
		os.Exit(1)
	}
}
