package csidriver

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// archive writes the tree under dir to path as a tar archive (regular
// files, directories and symlinks), through a temporary file renamed into
// place so a reader never sees half an archive.
func archive(dir, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return addEntry(tw, dir, p, e)
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	return os.Rename(tmp.Name(), path)
}

func addEntry(tw *tar.Writer, dir, p string, e fs.DirEntry) error {
	info, err := e.Info()
	if err != nil {
		return err
	}
	var link string
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	} else if !info.Mode().IsRegular() && !info.IsDir() {
		return nil // sockets, devices and pipes are not data
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(rel)
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// extract unpacks the archive at path into dir, refusing entries that
// would land outside it.
func extract(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", path, err)
		}
		if err := extractEntry(tr, hdr, dir); err != nil {
			return fmt.Errorf("extract %s: %s: %w", path, hdr.Name, err)
		}
	}
}

func extractEntry(tr *tar.Reader, hdr *tar.Header, dir string) error {
	name := filepath.FromSlash(hdr.Name)
	if !filepath.IsLocal(name) {
		return errors.New("path leaves the volume")
	}
	p := filepath.Join(dir, name)
	mode := hdr.FileInfo().Mode().Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(p, mode|0o700)
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, p)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	default:
		return nil
	}
}

// copyTree copies the tree under src into dst (for cloning a volume),
// through an archive in dst's parent directory.
func copyTree(src, dst string) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".clone-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	if err := archive(src, name); err != nil {
		return err
	}
	return extract(name, dst)
}

// TreeSums returns the SHA-256 of every regular file under dir, keyed by
// its slash-separated path relative to dir (and a symlink's target as
// "-> target"), so a test can compare a volume's data before a snapshot
// with a restored volume's.
func TreeSums(dir string) (map[string]string, error) {
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if e.Type()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(p)
			sums[key] = "-> " + link
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		sum, err := fileSum(p)
		sums[key] = sum
		return err
	})
	return sums, err
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
