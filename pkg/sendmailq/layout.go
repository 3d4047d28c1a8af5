package sendmailq

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is what a queue control file is, by its name's first two letters.
type Kind string

// The control files worth importing. tf (a qf being rewritten), xf
// (transcripts) and df (data, found through its qf) are not listed.
const (
	Queued      Kind = "qf" // waiting for delivery
	Quarantined Kind = "hf" // held by a milter or by sendmail -Q
	Lost        Kind = "Qf" // set aside by sendmail (or by gosendmail's reader) as unreadable
)

// Entry is one control file found by Scan.
type Entry struct {
	ID   string
	Kind Kind
	// Path is the control file: QueueDir/qfID, or QueueDir/qf/qfID when
	// the queue directory has a qf subdirectory.
	Path string
	// QueueDir is the queue directory the file belongs to: Scan's root or
	// one of its queue group subdirectories.
	QueueDir string
	// Root is the directory given to Scan.
	Root string
}

// Scan lists the control files of a sendmail queue directory, in each of
// sendmail's layouts:
//
//   - flat: root/qfID and root/dfID;
//   - split: root/qf/qfID, root/df/dfID (and root/xf/), where qf, df and
//     xf are subdirectories or symbolic links to directories;
//   - queue groups (QUEUE_GROUP with Path=/var/spool/mqueue/q*): the same
//     one level down, in root/q1, root/q2, ... (any subdirectory whose
//     name does not start with '.', such as .hoststat, and that holds
//     control files or a qf subdirectory).
//
// Entries come sorted by queue directory, then ID. An error is returned
// only when root itself cannot be read.
func Scan(root string) ([]Entry, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "scan", Path: root, Err: errors.New("not a directory")}
	}
	out, err := scanDir(root, root)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == "qf" || name == "df" || name == "xf" {
			continue
		}
		sub := filepath.Join(root, name)
		if !isDir(sub) {
			continue
		}
		found, err := scanDir(root, sub)
		if err != nil {
			continue // not a queue directory of ours to judge
		}
		out = append(out, found...)
	}
	return out, nil
}

// scanDir lists the control files of one queue directory.
func scanDir(root, qdir string) ([]Entry, error) {
	dir := qdir
	if sub := filepath.Join(qdir, "qf"); isDir(sub) {
		dir = sub
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range ents {
		name := e.Name()
		if len(name) < 3 || !e.Type().IsRegular() {
			continue
		}
		k := Kind(name[:2])
		if k != Queued && k != Quarantined && k != Lost {
			continue
		}
		if !ValidID(name[2:]) {
			continue
		}
		out = append(out, Entry{ID: name[2:], Kind: k, Path: filepath.Join(dir, name), QueueDir: qdir, Root: root})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Kind < out[j].Kind
	})
	return out, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// DataPaths are the places where the df of the entry's message may be,
// most likely first: next to the control file's queue directory (in its
// df subdirectory if it has one), or, when the qf names another
// directory (d record, sendmail's queue groups), in that one. A d
// directory must lie inside the Scan root: the qf is data, not a
// licence to read any file.
func (e *Entry) DataPaths(f *File) ([]string, error) {
	name := "df" + e.ID
	var dirs []string
	if f != nil && f.DataDir != "" {
		d := f.DataDir
		if strings.ContainsRune(d, 0) {
			return nil, fmt.Errorf("bad data directory %q", d)
		}
		var cands []string
		if filepath.IsAbs(d) {
			cands = []string{filepath.Clean(d)}
		} else {
			if hasDotDot(d) {
				return nil, fmt.Errorf("data directory %q leaves the queue", d)
			}
			cands = []string{filepath.Join(e.Root, d), filepath.Join(filepath.Dir(e.QueueDir), d)}
		}
		for _, c := range cands {
			if within(e.Root, c) {
				dirs = append(dirs, c)
			}
		}
		if len(dirs) == 0 {
			return nil, fmt.Errorf("data directory %q is outside %s", d, e.Root)
		}
	} else {
		dirs = []string{e.QueueDir}
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		for _, p := range []string{filepath.Join(d, "df", name), filepath.Join(d, name)} {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// within reports whether path is root or below it.
func within(root, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}
